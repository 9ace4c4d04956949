"""LlamaIndex: E2RankRerank and E2RankEmbedding with a real VectorStoreIndex, retriever and query engine."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.embeddings.e2rank import E2RankEmbedding
from llama_index.postprocessor.e2rank_rerank import E2RankRerank

from e2rank_core import E2RankModel

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
QUERY = "What is the capital of France?"


@pytest.fixture
def nodes(capitals: list[str]) -> list[TextNode]:
    return [TextNode(text=t, id_=f"n{i}", metadata={"line": i}) for i, t in enumerate(capitals)]


@pytest.fixture
def index(nodes) -> VectorStoreIndex:
    return VectorStoreIndex(copy.deepcopy(nodes), embed_model=E2RankEmbedding(model=MODEL))


def test_retriever_then_rerank(index, minilm: E2RankModel) -> None:
    retrieved = index.as_retriever(similarity_top_k=8).retrieve(QUERY)
    reranked = E2RankRerank(model=MODEL, top_n=3).postprocess_nodes(retrieved, query_str=QUERY)
    assert len(reranked) == 3 and "Paris is the capital" in reranked[0].node.get_content()
    scores = [n.score for n in reranked]
    assert all(isinstance(s, float) for s in scores) and scores == sorted(scores, reverse=True)
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in retrieved]
    expected = minilm.rerank(QUERY, texts, top_k=3)
    assert [n.node.node_id for n in reranked] == [retrieved[r.index].node.node_id for r in expected]
    np.testing.assert_allclose(scores, [r.score for r in expected], atol=1e-6)


def test_query_engine_source_nodes_in_e2rank_order(index) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=4)
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=8, node_postprocessors=[reranker])
    response = engine.query(QUERY)
    sources = response.source_nodes
    assert len(sources) == 4
    retrieved = index.as_retriever(similarity_top_k=8).retrieve(QUERY)
    direct = reranker.postprocess_nodes(retrieved, query_str=QUERY)
    assert [n.node.node_id for n in sources] == [n.node.node_id for n in direct]


class EventCollector(BaseEventHandler):
    events: list = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventCollector"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, ReRankStartEvent | ReRankEndEvent):
            self.events.append(event)


async def test_events_and_async(index) -> None:
    collector = EventCollector(events=[])
    root = get_dispatcher()
    root.add_event_handler(collector)
    debug = LlamaDebugHandler()
    reranker = E2RankRerank(model=MODEL, top_n=2, callback_manager=CallbackManager([debug]))
    try:
        retrieved = index.as_retriever(similarity_top_k=5).retrieve(QUERY)
        sync = reranker.postprocess_nodes(retrieved, query_str=QUERY)
        asynchronous = await reranker.apostprocess_nodes(retrieved, query_bundle=QueryBundle(QUERY))
    finally:
        root.event_handlers.remove(collector)
    kinds = [type(e).__name__ for e in collector.events]
    assert kinds == ["ReRankStartEvent", "ReRankEndEvent"] * 2
    assert collector.events[0].top_n == 2 and collector.events[0].model_name == MODEL
    assert len(collector.events[1].nodes) == 2
    assert len(debug.get_event_pairs(CBEventType.RERANKING)) == 2
    assert [(n.node.node_id, n.score) for n in asynchronous] == [(n.node.node_id, n.score) for n in sync]


def test_reused_node_embeddings(nodes, minilm: E2RankModel) -> None:
    embedder = E2RankEmbedding(model=MODEL)
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    vectors = embedder.get_text_embedding_batch(texts)
    np.testing.assert_allclose(vectors, minilm.embed_documents(texts), atol=1e-6)  # what the reranker computes
    with_vectors = [
        NodeWithScore(node=n.model_copy(update={"embedding": v}), score=0.1)
        for n, v in zip(nodes, vectors, strict=True)
    ]
    without = [NodeWithScore(node=n, score=0.1) for n in nodes]
    reranker = E2RankRerank(model=MODEL, top_n=8, use_node_embeddings=True)
    baseline = reranker.postprocess_nodes(without, query_str=QUERY)
    model = reranker.e2rank_model
    model.cache.clear()
    seen: list[int] = []
    original = model.backend.embed_ids

    def counting(sequences, **kwargs):
        seen.append(len(sequences))
        return original(sequences, **kwargs)

    model.backend.embed_ids = counting  # spy on the real model
    try:
        reused = reranker.postprocess_nodes(with_vectors, query_str=QUERY)
        assert seen == [1]
    finally:
        del model.backend.embed_ids
    assert [n.node.node_id for n in reused] == [n.node.node_id for n in baseline]
    np.testing.assert_allclose([n.score for n in reused], [n.score for n in baseline], atol=1e-5)
    bad = [NodeWithScore(node=n.model_copy(update={"embedding": [0.5] * 7})) for n in nodes]
    with pytest.raises(ValueError, match="dimension 7"):
        reranker.postprocess_nodes(bad, query_str=QUERY)


def test_edge_cases(nodes) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=50)
    assert reranker.postprocess_nodes([], query_str=QUERY) == []
    with pytest.raises(ValueError, match="query"):
        reranker.postprocess_nodes([NodeWithScore(node=nodes[0])])
    with_empty = [NodeWithScore(node=TextNode(text="")), *[NodeWithScore(node=n) for n in nodes[:3]]]
    assert len(reranker.postprocess_nodes(with_empty, query_str=QUERY)) == 4
    assert len(reranker.postprocess_nodes([NodeWithScore(node=n) for n in nodes], query_str=QUERY)) == len(nodes)
    with pytest.raises(ValueError, match="top_n"):
        E2RankRerank(model=MODEL, top_n=0)


def test_metadata_enters_the_text_and_scores_are_kept(minilm: E2RankModel) -> None:
    twins = [
        NodeWithScore(
            node=TextNode(text="A city with many museums.", metadata={"title": "Lyon, a French city"}), score=0.9
        ),
        NodeWithScore(
            node=TextNode(text="A city with many museums.", metadata={"title": "Paris, capital of France"}), score=0.2
        ),
    ]
    before = copy.deepcopy(twins)
    out = E2RankRerank(model=MODEL, top_n=2, keep_retrieval_score=True).postprocess_nodes(
        twins, query_str="capital of France"
    )
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in twins]
    assert "title: Paris" in texts[1]
    expected = minilm.rerank("capital of France", texts)
    assert [n.node.metadata["title"] for n in out] == [twins[r.index].node.metadata["title"] for r in expected]
    assert {n.node.metadata["retrieval_score"] for n in out} == {0.9, 0.2}
    assert [(n.score, n.node.metadata) for n in twins] == [(n.score, n.node.metadata) for n in before]  # untouched
