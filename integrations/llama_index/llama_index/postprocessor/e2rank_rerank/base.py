"""E2RankRerank: a LlamaIndex node postprocessor that reranks with E2Rank's listwise prompt embedding."""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_validator
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from e2rank_core import E2RankModel, default_model, shared_model

dispatcher = get_dispatcher(__name__)


class E2RankRerank(BaseNodePostprocessor):
    """Rerank retrieved nodes with E2Rank.

    Usage::

        from llama_index.postprocessor.e2rank_rerank import E2RankRerank

        reranker = E2RankRerank(model="sentence-transformers/all-MiniLM-L6-v2", top_n=3)
        engine = index.as_query_engine(similarity_top_k=50, node_postprocessors=[reranker])

    Node text is taken with ``MetadataMode.EMBED`` (what the index embedded). Returns new ``NodeWithScore`` objects
    with the cosine score (in [-1, 1]), best first; with ``keep_retrieval_score`` the previous score is kept in
    ``metadata["retrieval_score"]`` of a copied node. The caller's nodes are never modified.

    With ``use_node_embeddings=True`` and every node carrying an ``embedding`` from the same model (e.g. from
    ``E2RankEmbedding`` in a vector store that returns vectors), nodes are not re-encoded: one forward pass.
    The model loads on first use and is shared with an ``E2RankEmbedding`` of the same settings.
    """

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    top_n: int = Field(default=5, description="nodes to return")
    num_input_docs: int = Field(default=20, description="candidates written into the listwise prompt")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16")
    batch_size: int = Field(default=32, description="nodes per forward pass")
    keep_retrieval_score: bool = Field(default=False, description="keep the previous score in metadata")
    use_node_embeddings: bool = Field(default=False, description="reuse node.embedding when every node has one")
    trust_remote_code: bool = False

    _model: E2RankModel | None = PrivateAttr(default=None)

    @field_validator("top_n", "num_input_docs", "batch_size")
    @classmethod
    def _positive(cls, value: int, info: Any) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {value}")
        return value

    @classmethod
    def class_name(cls) -> str:
        return "E2RankRerank"

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded model (loaded once, on first use)."""
        if self._model is None:
            self._model = shared_model(
                self.model, device=self.device, dtype=self.dtype, trust_remote_code=self.trust_remote_code
            )
        return self._model

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model))
        if query_bundle is None:
            raise ValueError("E2RankRerank needs a query: pass query_bundle or query_str")
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
            if self.use_node_embeddings and all(n.node.embedding is not None for n in nodes):
                embeddings: Any = [n.node.embedding for n in nodes]
            else:
                embeddings = model.embed_documents(texts, batch_size=self.batch_size)
            hits = model.rerank(
                query_bundle.query_str,
                texts,
                top_k=self.top_n,
                document_embeddings=embeddings,
                num_input_docs=self.num_input_docs,
            )
            reranked = [self._rescored(nodes[hit.index], hit.score) for hit in hits]
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked

    def _rescored(self, original: NodeWithScore, score: float) -> NodeWithScore:
        node = original.node
        if self.keep_retrieval_score:
            node = node.model_copy(deep=True)
            node.metadata["retrieval_score"] = original.score
            # The added key is bookkeeping, not content: keep it out of what gets embedded or sent to an LLM.
            for excluded in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
                if "retrieval_score" not in excluded:
                    excluded.append("retrieval_score")
        return NodeWithScore(node=node, score=float(score))
