"""LlamaIndex: E2RankRerank and E2RankEmbedding with a real VectorStoreIndex, retriever, query engine and model."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler
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
ROOT = Path(__file__).resolve().parents[1]


def embed_text(node: NodeWithScore | TextNode) -> str:
    return node.get_content(metadata_mode=MetadataMode.EMBED)


def ids(nodes: list[NodeWithScore]) -> list[str]:
    return [n.node.node_id for n in nodes]


@pytest.fixture
def nodes(capitals: list[str]) -> list[TextNode]:
    return [TextNode(text=t, id_=f"n{i}", metadata={"line": i}) for i, t in enumerate(capitals)]


@pytest.fixture
def index(nodes: list[TextNode]) -> VectorStoreIndex:
    return VectorStoreIndex(copy.deepcopy(nodes), embed_model=E2RankEmbedding(model=MODEL))


@pytest.fixture
def count_sequences(monkeypatch: pytest.MonkeyPatch):
    """Spy on a real model: clear its cache, then record how many sequences each forward pass receives."""

    def attach(model: E2RankModel) -> list[int]:
        model.cache.clear()
        seen: list[int] = []
        original = model.backend.embed_ids

        def counting(sequences, **kwargs):
            seen.append(len(sequences))
            return original(sequences, **kwargs)

        monkeypatch.setattr(model.backend, "embed_ids", counting)
        return seen

    return attach


# ------------------------------------------------------------------------------------------ ranking


def test_retriever_then_rerank_matches_core(index: VectorStoreIndex, minilm: E2RankModel) -> None:
    retrieved = index.as_retriever(similarity_top_k=8).retrieve(QUERY)
    assert len(retrieved) == 8
    reranked = E2RankRerank(model=MODEL, top_n=3).postprocess_nodes(retrieved, query_str=QUERY)
    assert len(reranked) == 3
    assert "Paris is the capital" in reranked[0].node.get_content()
    scores = [n.score for n in reranked]
    assert all(isinstance(s, float) and -1.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)

    expected = minilm.rerank(QUERY, [embed_text(n) for n in retrieved])
    assert ids(reranked) == [retrieved[r.index].node.node_id for r in expected[:3]]
    np.testing.assert_allclose(scores, [r.score for r in expected[:3]], atol=1e-5)

    everything = E2RankRerank(model=MODEL, top_n=8).postprocess_nodes(retrieved, query_str=QUERY)
    assert ids(everything) == [retrieved[r.index].node.node_id for r in expected]
    assert ids(everything)[:3] == ids(reranked)  # top_n only cuts


def test_decoder_model_through_the_adapter(tiny_qwen3_dir: Path, tiny_qwen3: E2RankModel, capitals: list[str]) -> None:
    given = [NodeWithScore(node=TextNode(text=t), score=0.0) for t in capitals]
    reranker = E2RankRerank(model=str(tiny_qwen3_dir), device="cpu", dtype="float32", top_n=len(capitals))
    out = reranker.postprocess_nodes(given, query_str=QUERY)
    expected = tiny_qwen3.rerank(QUERY, capitals)
    assert [n.node.get_content() for n in out] == [r.document for r in expected]
    np.testing.assert_allclose([n.score for n in out], [r.score for r in expected], atol=1e-5)


def test_query_engine_source_nodes_in_e2rank_order(index: VectorStoreIndex, minilm: E2RankModel) -> None:
    engine = index.as_query_engine(
        llm=MockLLM(), similarity_top_k=8, node_postprocessors=[E2RankRerank(model=MODEL, top_n=4)]
    )
    response = engine.query(QUERY)
    assert isinstance(response.response, str)  # MockLLM answered, no network
    retrieved = index.as_retriever(similarity_top_k=8).retrieve(QUERY)
    expected = minilm.rerank(QUERY, [embed_text(n) for n in retrieved], top_k=4)
    assert ids(response.source_nodes) == [retrieved[r.index].node.node_id for r in expected]
    np.testing.assert_allclose([n.score for n in response.source_nodes], [r.score for r in expected], atol=1e-5)


async def test_async_query_engine_equals_sync(index: VectorStoreIndex) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=4)
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=8, node_postprocessors=[reranker])
    sync = engine.query(QUERY).source_nodes
    asynchronous = (await engine.aquery(QUERY)).source_nodes
    assert [(n.node.node_id, n.score) for n in asynchronous] == [(n.node.node_id, n.score) for n in sync]

    retrieved = index.as_retriever(similarity_top_k=8).retrieve(QUERY)
    direct = await reranker.apostprocess_nodes(retrieved, query_bundle=QueryBundle(QUERY))
    assert [(n.node.node_id, n.score) for n in direct] == [(n.node.node_id, n.score) for n in sync]


# ------------------------------------------------------------------------------------------ events


class RerankEventCollector(BaseEventHandler):
    events: list = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "RerankEventCollector"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, ReRankStartEvent | ReRankEndEvent):
            self.events.append(event)


async def test_instrumentation_and_callback_events(index: VectorStoreIndex) -> None:
    collector = RerankEventCollector()
    root = get_dispatcher()
    root.add_event_handler(collector)
    debug = LlamaDebugHandler()
    reranker = E2RankRerank(model=MODEL, top_n=2, callback_manager=CallbackManager([debug]))
    retrieved = index.as_retriever(similarity_top_k=5).retrieve(QUERY)
    try:
        sync = reranker.postprocess_nodes(retrieved, query_str=QUERY)
        asynchronous = await reranker.apostprocess_nodes(retrieved, query_bundle=QueryBundle(QUERY))
    finally:
        root.event_handlers.remove(collector)

    assert [type(e).__name__ for e in collector.events] == ["ReRankStartEvent", "ReRankEndEvent"] * 2
    start, end = collector.events[0], collector.events[1]
    assert start.top_n == 2 and start.model_name == MODEL and start.query.query_str == QUERY
    assert ids(start.nodes) == ids(retrieved)
    assert ids(end.nodes) == ids(sync)

    pairs = debug.get_event_pairs(CBEventType.RERANKING)
    assert len(pairs) == 2
    begin, finish = pairs[0]
    assert begin.payload[EventPayload.QUERY_STR] == QUERY and begin.payload[EventPayload.TOP_K] == 2
    assert begin.payload[EventPayload.MODEL_NAME] == MODEL
    assert ids(finish.payload[EventPayload.NODES]) == ids(sync)
    assert [(n.node.node_id, n.score) for n in asynchronous] == [(n.node.node_id, n.score) for n in sync]


# ------------------------------------------------------------------------------------------ embeddings + reuse


def test_index_embeddings_are_what_the_reranker_computes(index: VectorStoreIndex, minilm: E2RankModel) -> None:
    # The index embedded each node's MetadataMode.EMBED text (metadata included) with E2RankEmbedding.
    stored = index.docstore.docs
    assert "line: 0" in embed_text(stored["n0"])
    vectors = np.array([index.vector_store.get(node_id) for node_id in stored])
    np.testing.assert_allclose(vectors, minilm.embed_documents([embed_text(n) for n in stored.values()]), atol=1e-6)


def test_node_embeddings_are_reused(index: VectorStoreIndex, minilm: E2RankModel, count_sequences) -> None:
    retrieved = index.as_retriever(similarity_top_k=8).retrieve(QUERY)
    assert all(n.node.embedding is None for n in retrieved)  # the vector store does not return vectors
    with_vectors = [
        NodeWithScore(
            node=n.node.model_copy(update={"embedding": index.vector_store.get(n.node.node_id)}), score=n.score
        )
        for n in retrieved
    ]
    reranker = E2RankRerank(model=MODEL, top_n=8, use_node_embeddings=True)
    model = reranker.e2rank_model
    seen = count_sequences(model)

    baseline = reranker.postprocess_nodes(retrieved, query_str=QUERY)  # no vectors: 8 texts + the prompt
    assert sum(seen) == 9
    seen.clear()
    model.cache.clear()
    reused = reranker.postprocess_nodes(with_vectors, query_str=QUERY)
    assert seen == [1]  # only the listwise prompt went through the model
    assert ids(reused) == ids(baseline)
    np.testing.assert_allclose([n.score for n in reused], [n.score for n in baseline], atol=1e-5)

    seen.clear()
    model.cache.clear()
    mixed = [*with_vectors[:5], *retrieved[5:]]
    assert ids(reranker.postprocess_nodes(mixed, query_str=QUERY)) == ids(baseline)
    assert sum(seen) == 3 + 1  # the three nodes without a vector, then the prompt

    seen.clear()
    model.cache.clear()
    E2RankRerank(model=MODEL, top_n=8).postprocess_nodes(with_vectors, query_str=QUERY)
    assert sum(seen) == 9  # reuse is opt-in


def test_wrong_dimension_node_embeddings(nodes: list[TextNode]) -> None:
    bad = [NodeWithScore(node=n.model_copy(update={"embedding": [0.5] * 7})) for n in nodes]
    reranker = E2RankRerank(model=MODEL, use_node_embeddings=True)
    with pytest.raises(ValueError, match=r"dimension 7.*384-dimensional"):
        reranker.postprocess_nodes(bad, query_str=QUERY)
    assert len(E2RankRerank(model=MODEL).postprocess_nodes(bad, query_str=QUERY)) == 5  # ignored without reuse


async def test_embedding_model(nodes: list[TextNode], minilm: E2RankModel) -> None:
    embedder = E2RankEmbedding(model=MODEL)
    assert E2RankEmbedding.class_name() == "E2RankEmbedding" and embedder.model_name == MODEL
    texts = [embed_text(n) for n in nodes]
    batch = embedder.get_text_embedding_batch(texts)
    np.testing.assert_allclose(batch, minilm.embed_documents(texts), atol=1e-6)
    np.testing.assert_allclose(await embedder.aget_text_embedding_batch(texts), batch, atol=1e-6)
    np.testing.assert_allclose(embedder.get_text_embedding(texts[2]), batch[2], atol=1e-6)
    np.testing.assert_allclose(await embedder.aget_text_embedding(texts[2]), batch[2], atol=1e-6)

    query = embedder.get_query_embedding(QUERY)
    np.testing.assert_allclose(query, minilm.embed_queries([QUERY])[0], atol=1e-6)
    np.testing.assert_allclose(await embedder.aget_query_embedding(QUERY), query, atol=1e-6)
    task = "Given a question, retrieve the sentence that answers it"
    custom = E2RankEmbedding(model=MODEL, query_instruction=task, plain_queries=False).get_query_embedding(QUERY)
    np.testing.assert_allclose(custom, minilm.embed_queries([QUERY], instruction=task, plain=False)[0], atol=1e-6)
    assert not np.allclose(custom, query)
    bare = E2RankEmbedding(model=MODEL, plain_queries=True).get_query_embedding(QUERY)
    np.testing.assert_allclose(bare, minilm.backend.st_model.encode([QUERY], normalize_embeddings=True)[0], atol=1e-5)
    np.testing.assert_allclose(bare, query, atol=1e-6)  # the base model records no instruction: bare by default


def test_embedding_settings_and_sharing() -> None:
    assert E2RankEmbedding(model_name=MODEL).model == MODEL  # LlamaIndex's usual argument name
    with pytest.raises(ValueError, match="disagree"):
        E2RankEmbedding(model=MODEL, model_name="another/model")
    embedder = E2RankEmbedding(model=MODEL)
    reranker = E2RankRerank(model=MODEL)
    assert embedder.e2rank_model is reranker.e2rank_model  # one copy of the weights per process

    vector = embedder.get_text_embedding("Paris")
    restored = pickle.loads(pickle.dumps(embedder))  # settings only, the weights are not pickled
    assert restored.to_dict() == embedder.to_dict() and restored.get_text_embedding("Paris") == vector
    assert E2RankEmbedding.from_dict(embedder.to_dict()).to_dict() == embedder.to_dict()

    data = reranker.to_dict()
    assert data["class_name"] == "E2RankRerank" and data["model"] == MODEL
    assert E2RankRerank.from_dict(data).to_dict() == data
    assert pickle.loads(pickle.dumps(reranker)).to_dict() == data


# ------------------------------------------------------------------------------------------ edge cases


def test_edge_cases(nodes: list[TextNode]) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=50)
    assert reranker.postprocess_nodes([], query_str=QUERY) == []
    with pytest.raises(ValueError, match="needs a query"):
        reranker.postprocess_nodes([NodeWithScore(node=nodes[0])])
    with pytest.raises(ValueError, match="query"):
        reranker.postprocess_nodes([NodeWithScore(node=nodes[0])], query_str="   ")

    with_empty = [NodeWithScore(node=TextNode(text="")), *[NodeWithScore(node=n) for n in nodes[:3]]]
    out = reranker.postprocess_nodes(with_empty, query_str=QUERY)
    assert sorted(ids(out)) == sorted(ids(with_empty))  # top_n larger than the list: everything, reordered
    assert all(np.isfinite(n.score) for n in out)

    for field in ("top_n", "num_input_docs", "batch_size"):
        with pytest.raises(ValueError, match=field):
            E2RankRerank(model=MODEL, **{field: 0})


def test_metadata_enters_the_text(minilm: E2RankModel) -> None:
    # Same body, different titles: only the metadata can tell them apart.
    twins = [
        NodeWithScore(node=TextNode(text="A city with many museums.", metadata={"title": "Lyon, in the Rhone valley"})),
        NodeWithScore(node=TextNode(text="A city with many museums.", metadata={"title": "Paris, capital of France"})),
    ]
    out = E2RankRerank(model=MODEL, top_n=2).postprocess_nodes(twins, query_str="capital of France")
    assert out[0].score != pytest.approx(out[1].score, abs=1e-4)
    texts = [embed_text(n) for n in twins]
    assert "title: Paris" in texts[1]
    expected = minilm.rerank("capital of France", texts)
    assert [n.node.metadata["title"] for n in out] == [twins[r.index].node.metadata["title"] for r in expected]
    np.testing.assert_allclose([n.score for n in out], [r.score for r in expected], atol=1e-5)

    hidden = [NodeWithScore(node=n.node.model_copy(update={"excluded_embed_metadata_keys": ["title"]})) for n in twins]
    tied = E2RankRerank(model=MODEL, top_n=2).postprocess_nodes(hidden, query_str="capital of France")
    assert tied[0].score == pytest.approx(tied[1].score)  # excluded metadata is not part of the text


def test_inputs_are_not_mutated(nodes: list[TextNode]) -> None:
    given = [NodeWithScore(node=n, score=0.1 * i) for i, n in enumerate(nodes)]
    before = [(n.node.model_dump(), n.score) for n in given]
    order = list(given)
    for keep in (False, True):
        out = E2RankRerank(model=MODEL, top_n=4, keep_retrieval_score=keep).postprocess_nodes(given, query_str=QUERY)
        assert given == order and [(n.node.model_dump(), n.score) for n in given] == before
        assert not any(r is n for r in out for n in given)

    kept = E2RankRerank(model=MODEL, top_n=4, keep_retrieval_score=True).postprocess_nodes(given, query_str=QUERY)
    by_id = {n.node.node_id: n.score for n in given}
    for n in kept:
        assert n.node.metadata["retrieval_score"] == by_id[n.node.node_id]
        assert n.score != n.node.metadata["retrieval_score"]
        assert "retrieval_score" not in n.node.get_content(metadata_mode=MetadataMode.EMBED)
        assert "retrieval_score" not in n.node.get_content(metadata_mode=MetadataMode.LLM)


def test_namespace_import_from_another_directory(tmp_path: Path) -> None:
    for parent in ("llama_index", "llama_index/postprocessor", "llama_index/embeddings"):
        assert not (ROOT / "integrations" / "llama_index" / parent / "__init__.py").exists()
    code = (
        "import llama_index.core\n"
        "from llama_index.postprocessor.e2rank_rerank import E2RankRerank\n"
        "from llama_index.embeddings.e2rank import E2RankEmbedding\n"
        "print(E2RankRerank.class_name(), E2RankEmbedding.class_name())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["E2RankRerank", "E2RankEmbedding"]
