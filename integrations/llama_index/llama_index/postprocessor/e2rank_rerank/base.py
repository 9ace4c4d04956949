"""E2RankRerank: a LlamaIndex node postprocessor that reranks with E2Rank's listwise prompt embedding."""

from __future__ import annotations

from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from e2rank_core.pydantic_fields import E2RankRerankFields

dispatcher = get_dispatcher(__name__)

#: Metadata key that holds the first-stage score when ``keep_retrieval_score=True``.
RETRIEVAL_SCORE_KEY = "retrieval_score"


class E2RankRerank(E2RankRerankFields, BaseNodePostprocessor):
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

    top_n: int = Field(default=5, description="how many nodes to return (at most)")
    use_node_embeddings: bool = Field(default=False, description="reuse node.embedding instead of re-encoding")
    keep_retrieval_score: bool = Field(default=False, description="keep the previous score in metadata")

    @classmethod
    def class_name(cls) -> str:
        return "E2RankRerank"

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
                top_k=self.top_n,
                **self.core_options(),
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
