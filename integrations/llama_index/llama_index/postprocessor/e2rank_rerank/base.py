"""E2RankRerank: a LlamaIndex node postprocessor that reranks with E2Rank's listwise prompt embedding."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import Field, PrivateAttr, ValidationInfo, field_validator
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from e2rank_core import E2RankModel, default_model, shared_model

dispatcher = get_dispatcher(__name__)
logger = logging.getLogger(__name__)

#: Metadata key that holds the first-stage score when ``keep_retrieval_score=True``.
RETRIEVAL_SCORE_KEY = "retrieval_score"


class E2RankRerank(BaseNodePostprocessor):
    """Rerank retrieved nodes with E2Rank (one embedding model as retriever and listwise reranker).

    Usage::

        from llama_index.core import VectorStoreIndex
        from llama_index.embeddings.e2rank import E2RankEmbedding
        from llama_index.postprocessor.e2rank_rerank import E2RankRerank

        model = "e2rank/minilm-l6-e2rank"  # bundled, offline; also the default (e2rank_core.default_model())
        index = VectorStoreIndex(nodes, embed_model=E2RankEmbedding(model=model))
        reranker = E2RankRerank(model=model, top_n=3)
        engine = index.as_query_engine(similarity_top_k=50, node_postprocessors=[reranker])

        # or directly
        best = reranker.postprocess_nodes(index.as_retriever(similarity_top_k=50).retrieve(q), query_str=q)

    Behaviour:

    * Node text is ``node.get_content(metadata_mode=MetadataMode.EMBED)``: the text the index embedded,
      metadata included according to the node's ``excluded_embed_metadata_keys``.
    * The query and the first ``num_input_docs`` nodes (in input order) form one listwise prompt; every node is
      scored by the cosine similarity (in [-1, 1]) between its embedding and the prompt's embedding.
    * Returns **new** ``NodeWithScore`` objects, best first, at most ``top_n``. The caller's list, its
      ``NodeWithScore`` objects and its nodes are never modified. With ``keep_retrieval_score=True`` each result
      holds a copy of its node whose ``metadata["retrieval_score"]`` is the previous score (the key is excluded
      from the embed/LLM text of that copy).
    * ``use_node_embeddings=True``: nodes whose ``node.embedding`` is set (e.g. from ``E2RankEmbedding`` with the
      same model, in a vector store that returns vectors) are not re-encoded; when every node has one, the
      rerank is a single forward pass (the prompt). A vector of the wrong size raises ``ValueError``. Only the
      dimension can be checked: vectors from another model of the same size give meaningless scores.
    * The model is loaded lazily on first use (not in ``__init__``) and shared, through
      ``e2rank_core.shared_model``, with every ``E2RankEmbedding``/``E2RankRerank`` of the same
      (model, device, dtype, trust_remote_code) in the process. Changing those fields later loads the new model.
    * Emits ``ReRankStartEvent``/``ReRankEndEvent`` (instrumentation) and the legacy ``CBEventType.RERANKING``
      callback event. ``apostprocess_nodes`` runs the same work in a worker thread.
    """

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    top_n: int = Field(default=5, description="how many nodes to return (at most)")
    num_input_docs: int = Field(default=20, description="candidates written into the listwise prompt")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float32 on CPU")
    batch_size: int = Field(default=32, description="node texts per forward pass")
    keep_retrieval_score: bool = Field(default=False, description="keep the previous score in metadata")
    use_node_embeddings: bool = Field(default=False, description="reuse node.embedding instead of re-encoding")
    trust_remote_code: bool = Field(default=False, description="allow custom model code from the checkpoint")

    _model: E2RankModel | None = PrivateAttr(default=None)
    _model_key: tuple[Any, ...] | None = PrivateAttr(default=None)

    @field_validator("top_n", "num_input_docs", "batch_size")
    @classmethod
    def _positive(cls, value: int, info: ValidationInfo) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {value}")
        return value

    @classmethod
    def class_name(cls) -> str:
        return "E2RankRerank"

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded :class:`~e2rank_core.E2RankModel` (loaded on first access, shared per settings)."""
        key = (self.model, self.device, self.dtype, self.trust_remote_code)
        if self._model is None or self._model_key != key:
            self._model = shared_model(
                self.model, device=self.device, dtype=self.dtype, trust_remote_code=self.trust_remote_code
            )
            self._model_key = key
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        # Pickle the settings, not the weights: the copy reloads (or reuses) the shared model on first use.
        # Cleared before the base class test-pickles every attribute, which would serialise the whole model.
        loaded = self._model, self._model_key
        self._model = self._model_key = None
        try:
            return super().__getstate__()
        finally:
            self._model, self._model_key = loaded

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model))
        if query_bundle is None:
            raise ValueError("E2RankRerank needs a query: pass query_bundle or query_str to postprocess_nodes")
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query_bundle.query_str,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            model = self.e2rank_model
            hits = model.rerank(
                query_bundle.query_str,
                texts,
                top_k=self.top_n,
                document_embeddings=self._document_embeddings(model, nodes, texts),
                num_input_docs=self.num_input_docs,
            )
            reranked = [self._rescored(nodes[hit.index], hit.score) for hit in hits]
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked

    def _document_embeddings(self, model: E2RankModel, nodes: list[NodeWithScore], texts: list[str]) -> np.ndarray:
        """One row per node: its own ``embedding`` when reuse is on and it has one, else freshly encoded."""
        given: list[Any] = [n.node.embedding for n in nodes] if self.use_node_embeddings else [None] * len(nodes)
        for n, vector in zip(nodes, given, strict=True):
            if vector is not None and len(vector) != model.dimension:
                raise ValueError(
                    f"node {n.node.node_id!r} has an embedding of dimension {len(vector)}, but {self.model!r} "
                    f"produces {model.dimension}-dimensional embeddings: the nodes were embedded by another model. "
                    "Embed them with E2RankEmbedding of the same model, or set use_node_embeddings=False."
                )
        present = [i for i, vector in enumerate(given) if vector is not None]
        missing = [i for i, vector in enumerate(given) if vector is None]
        if self.use_node_embeddings and missing:
            logger.debug("E2RankRerank: %d of %d nodes carry no embedding; encoding them", len(missing), len(nodes))
        matrix = np.zeros((len(nodes), model.dimension), dtype=np.float32)
        if present:
            matrix[present] = np.asarray([given[i] for i in present], dtype=np.float32)
        if missing:
            matrix[missing] = model.embed_documents([texts[i] for i in missing], batch_size=self.batch_size)
        return matrix

    def _rescored(self, original: NodeWithScore, score: float) -> NodeWithScore:
        node = original.node
        if self.keep_retrieval_score:
            node = node.model_copy(deep=True)  # deep: metadata and key lists are the caller's otherwise
            node.metadata[RETRIEVAL_SCORE_KEY] = original.score
            # Bookkeeping, not content: keep it out of what gets embedded or sent to an LLM.
            for excluded in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
                if RETRIEVAL_SCORE_KEY not in excluded:
                    excluded.append(RETRIEVAL_SCORE_KEY)
        return NodeWithScore(node=node, score=float(score))
