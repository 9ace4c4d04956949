"""E2RankRerank: a LlamaIndex node postprocessor that reranks with E2Rank's listwise prompt embedding."""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, field_validator, model_validator
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from e2rank_core import E2RankModel, default_model
from e2rank_core.settings import (
    ModelSettings,
    check_device,
    check_dtype,
    check_flag,
    check_model_name,
    check_threshold,
    check_top_k,
    reject_unknown_arguments,
    resolve_alias,
)
from e2rank_core.validation import check_optional_positive_int

dispatcher = get_dispatcher(__name__)

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

    The rules are the core's (``E2RankModel.rerank``), the same in every framework:

    * node text is ``node.get_content(metadata_mode=MetadataMode.EMBED)``, the text the index embedded;
    * the prompt holds the ``num_input_docs`` best nodes by their incoming ``NodeWithScore.score`` (nodes without a
      score follow in arrival order); every node is scored by cosine to the prompt embedding, in [-1, 1], or
      ``(s + 1) / 2`` with ``scale_score=True``; ``score_threshold`` (>=) applies to that score, before ``top_n``;
    * duplicates (same ``node_id``) are ranked once, as the copy with the highest incoming score;
    * ``use_node_embeddings=True`` reuses each ``node.embedding`` that is set (from ``E2RankEmbedding`` with the
      same model) and encodes the others; a vector of the wrong size raises ``ValueError``.

    Returns **new** ``NodeWithScore`` objects, best first; inputs are never modified. With
    ``keep_retrieval_score=True`` each result holds a copy of its node whose ``metadata["retrieval_score"]`` is the
    previous score (excluded from the embed/LLM text of that copy). Unknown arguments are an error;
    ``model_name`` is accepted for ``model`` and ``use_document_embeddings`` for ``use_node_embeddings``. The model
    loads on first use and is shared with every e2rank component of any framework naming the same model and
    settings. Emits ``ReRankStartEvent``/``ReRankEndEvent`` and the legacy ``CBEventType.RERANKING`` event.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    top_n: int = Field(default=5, description="how many nodes to return (at most)")
    num_input_docs: int = Field(default=20, description="candidates written into the listwise prompt")
    score_threshold: float | None = Field(default=None, description="drop nodes whose (scaled) score is below this")
    scale_score: bool = Field(default=False, description="report (cos + 1) / 2 in [0, 1] instead of the cosine")
    use_node_embeddings: bool = Field(default=False, description="reuse node.embedding instead of re-encoding")
    window_size: int | None = Field(default=None, description="sliding windows of this size instead of one prompt")
    stride: int = Field(default=10, description="sliding-window step")
    keep_retrieval_score: bool = Field(default=False, description="keep the previous score in metadata")
    batch_size: int = Field(default=32, description="node texts per forward pass")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float32 on CPU")
    token: str | None = Field(default=None, description="Hugging Face token", exclude=True, repr=False)
    model_kwargs: dict[str, Any] | None = Field(default=None, description="passed to from_pretrained")
    trust_remote_code: bool = Field(default=False, description="allow custom model code from the checkpoint")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, values: Any) -> Any:
        if isinstance(values, dict):
            values = dict(values)
            resolve_alias(values, "model", "model_name")
            resolve_alias(values, "use_node_embeddings", "use_document_embeddings")
            reject_unknown_arguments(cls.__name__, values, cls.model_fields)
        return values

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> str:
        return check_model_name(value) or default_model()

    @field_validator("top_n", "num_input_docs", "batch_size", "stride", mode="before")
    @classmethod
    def _positive(cls, value: Any, info: Any) -> int:
        return check_top_k(str(info.field_name), value)

    @field_validator("scale_score", "use_node_embeddings", "keep_retrieval_score", "trust_remote_code", mode="before")
    @classmethod
    def _flag(cls, value: Any, info: Any) -> bool:
        return check_flag(str(info.field_name), value)

    @field_validator("window_size", mode="before")
    @classmethod
    def _window(cls, value: Any) -> int | None:
        return check_optional_positive_int("window_size", value)

    @field_validator("score_threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> float | None:
        return check_threshold("score_threshold", value)

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> str | None:
        return check_device(value)

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: Any) -> str | None:
        return check_dtype(value)

    @classmethod
    def class_name(cls) -> str:
        return "E2RankRerank"

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded :class:`~e2rank_core.E2RankModel` (loaded on first access, shared per settings)."""
        return ModelSettings(
            self.model, self.device, self.dtype, self.token, self.trust_remote_code, self.model_kwargs
        ).load()

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model))
        if query_bundle is None:
            raise ValueError("E2RankRerank needs a query: pass query_bundle or query_str to postprocess_nodes")
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query_bundle.query_str,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            hits = self.e2rank_model.rerank(
                query_bundle.query_str,
                [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes],
                document_embeddings=[n.node.embedding if self.use_node_embeddings else None for n in nodes],
                first_stage_scores=[n.score for n in nodes],
                ids=[n.node.node_id for n in nodes],
                deduplicate=True,
                top_k=self.top_n,
                score_threshold=self.score_threshold,
                scale_score=self.scale_score,
                num_input_docs=self.num_input_docs,
                window_size=self.window_size,
                stride=self.stride,
                batch_size=self.batch_size,
            )
            reranked = [self._rescored(nodes[hit.index], hit.score) for hit in hits]
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked

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
