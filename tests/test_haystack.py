"""Haystack 3: E2RankRanker and embedders in real pipelines, on the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.e2rank import E2RankDocumentEmbedder, E2RankTextEmbedder
from haystack_integrations.components.rankers.e2rank import E2RankRanker

from e2rank_core import E2RankModel, default_model, scale_score

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
QUERY = "What is the capital of France?"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "haystack"


@pytest.fixture
def documents(capitals: list[str]) -> list[Document]:
    return [Document(content=text, meta={"source": f"line-{i}", "lang": "en"}) for i, text in enumerate(capitals)]


def indexed_store(documents: list[Document]) -> InMemoryDocumentStore:
    store = InMemoryDocumentStore()
    store.write_documents(E2RankDocumentEmbedder(model=MODEL, progress_bar=False).run(documents)["documents"])
    return store


def retrieval_pipeline(store: InMemoryDocumentStore, **ranker_kwargs) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("embedder", E2RankTextEmbedder(model=MODEL))
    pipeline.add_component("retriever", InMemoryEmbeddingRetriever(store, top_k=8, return_embedding=True))
    pipeline.add_component("ranker", E2RankRanker(model=MODEL, **ranker_kwargs))
    pipeline.connect("embedder.embedding", "retriever.query_embedding")
    pipeline.connect("retriever.documents", "ranker.documents")
    return pipeline


def test_pipeline_ranks_scores_and_cuts(documents) -> None:
    pipeline = retrieval_pipeline(indexed_store(documents), top_k=3)
    result = pipeline.run({"embedder": {"text": QUERY}, "ranker": {"query": QUERY}})
    ranked = result["ranker"]["documents"]
    assert len(ranked) == 3
    assert "Paris is the capital" in ranked[0].content
    scores = [d.score for d in ranked]
    assert all(isinstance(s, float) for s in scores) and scores == sorted(scores, reverse=True)


def test_same_ranking_as_the_core(documents, minilm: E2RankModel) -> None:
    ranked = E2RankRanker(model=MODEL, top_k=100).run(query=QUERY, documents=documents)["documents"]
    expected = minilm.rerank(QUERY, [d.content for d in documents])
    assert [d.content for d in ranked] == [r.document for r in expected]
    np.testing.assert_allclose([d.score for d in ranked], [r.score for r in expected], atol=1e-6)


def test_yaml_round_trip_without_unsafe_flags(documents) -> None:
    store = indexed_store(documents)
    pipeline = retrieval_pipeline(store, top_k=4, scale_score=True, meta_fields_to_embed=["lang"])
    yaml_text = pipeline.dumps()
    assert "haystack_integrations.components.rankers.e2rank.ranker.E2RankRanker" in yaml_text
    loaded = Pipeline.loads(yaml_text)  # no allowed_modules, no unsafe: the namespace is trusted
    assert loaded.to_dict() == pipeline.to_dict()
    loaded.get_component("retriever").document_store = store  # an in-memory store's contents live in this process
    result = loaded.run({"embedder": {"text": QUERY}, "ranker": {"query": QUERY}})
    ranked = result["ranker"]["documents"]
    assert len(ranked) == 4 and all(0.0 <= d.score <= 1.0 for d in ranked)


@pytest.mark.parametrize("component", [E2RankRanker, E2RankTextEmbedder, E2RankDocumentEmbedder])
def test_to_dict_from_dict_exact_round_trip(component) -> None:
    import torch

    kwargs = {"attn_implementation": "eager", "torch_dtype": torch.float16, "nested": {"dtype": torch.bfloat16}}
    original = component(model=MODEL, model_kwargs=kwargs)
    data = original.to_dict()
    assert data["init_parameters"]["model_kwargs"]["nested"]["dtype"] == "torch.bfloat16"
    assert original.model_kwargs["nested"]["dtype"] is torch.bfloat16  # serializing did not touch the component
    frozen = copy.deepcopy(data)
    revived = component.from_dict(data)
    assert data == frozen  # from_dict leaves its input alone
    assert revived.model_kwargs == kwargs and revived.to_dict() == data
    assert revived._get_telemetry_data() == {"model": MODEL}


def test_model_settings_round_trip_exactly_and_default_to_the_models_own() -> None:
    """``query_weight`` and ``num_input_docs`` serialize like every init parameter; ``None`` (the model's own)
    stays ``None`` through ``to_dict``/``from_dict`` and YAML."""
    ranker = E2RankRanker(model=MODEL, query_weight=0.5, num_input_docs=None)
    data = ranker.to_dict()
    assert data["init_parameters"]["query_weight"] == 0.5 and data["init_parameters"]["num_input_docs"] is None
    revived = E2RankRanker.from_dict(copy.deepcopy(data))
    assert (revived.query_weight, revived.num_input_docs) == (0.5, None) and revived.to_dict() == data
    pipeline = Pipeline()
    pipeline.add_component("ranker", E2RankRanker(model=MODEL, query_weight=0, num_input_docs=5))
    pipeline.add_component("default", E2RankRanker(model=MODEL))
    loaded = Pipeline.loads(pipeline.dumps())
    assert loaded.to_dict() == pipeline.to_dict()
    assert (loaded.get_component("ranker").query_weight, loaded.get_component("ranker").num_input_docs) == (0.0, 5)
    assert (loaded.get_component("default").query_weight, loaded.get_component("default").num_input_docs) == (
        None,
        None,
    )
    with pytest.raises(ValueError, match="query_weight"):
        E2RankRanker.from_dict({"type": data["type"], "init_parameters": {"query_weight": -1}})


def test_hand_written_yaml_defaults_and_device_string() -> None:
    yaml_text = """
components:
  embedder:
    type: haystack_integrations.components.embedders.e2rank.text_embedder.E2RankTextEmbedder
    init_parameters:
  ranker:
    type: haystack_integrations.components.rankers.e2rank.ranker.E2RankRanker
    init_parameters:
      device: cpu
      top_k: 2
connections: []
"""
    pipeline = Pipeline.loads(yaml_text)
    ranker = pipeline.get_component("ranker")
    assert ranker.model == default_model() and ranker.device.to_torch_str() == "cpu" and ranker.top_k == 2
    assert pipeline.get_component("embedder").model == default_model()


def test_example_yaml_loads_without_flags() -> None:
    query = Pipeline.loads((EXAMPLES / "pipeline.yaml").read_text())
    ranker = query.get_component("ranker")
    retriever = query.get_component("retriever")
    assert isinstance(ranker, E2RankRanker) and ranker.use_document_embeddings
    assert isinstance(retriever, InMemoryEmbeddingRetriever) and retriever.top_k == 50
    assert isinstance(query.get_component("text_embedder"), E2RankTextEmbedder)
    indexing = Pipeline.loads((EXAMPLES / "indexing.yaml").read_text())
    embedder = indexing.get_component("embedder")
    assert isinstance(embedder, E2RankDocumentEmbedder)
    # the reused vectors are valid only if both sides build the same document text
    assert (embedder.model, embedder.meta_fields_to_embed, embedder.embedding_separator) == (
        ranker.model,
        ranker.meta_fields_to_embed,
        ranker.embedding_separator,
    )


def test_warm_up_is_idempotent_and_the_model_is_shared() -> None:
    ranker = E2RankRanker(model=MODEL)
    ranker.warm_up()
    loaded = ranker.e2rank_model
    ranker.warm_up()
    assert ranker.e2rank_model is loaded is not None
    text_embedder, doc_embedder = E2RankTextEmbedder(model=MODEL), E2RankDocumentEmbedder(model=MODEL)
    text_embedder.warm_up()
    doc_embedder.warm_up()
    assert text_embedder.e2rank_model is loaded and doc_embedder.e2rank_model is loaded


async def test_run_async_through_pipeline_equals_run(documents) -> None:
    pipeline = retrieval_pipeline(indexed_store(documents), top_k=5)
    inputs = {"embedder": {"text": QUERY}, "ranker": {"query": QUERY}}
    sync = pipeline.run(inputs)["ranker"]["documents"]
    asynchronous = (await pipeline.run_async(inputs))["ranker"]["documents"]
    assert [(d.id, d.score) for d in asynchronous] == [(d.id, d.score) for d in sync]


def test_reused_embeddings_are_not_reencoded(documents, minilm: E2RankModel) -> None:
    embedded = E2RankDocumentEmbedder(model=MODEL, progress_bar=False).run(documents)["documents"]
    embedded_before = copy.deepcopy(embedded)
    ranker = E2RankRanker(model=MODEL, use_document_embeddings=True, top_k=8)
    ranker.warm_up()
    model = ranker.e2rank_model
    assert model is not None
    baseline = E2RankRanker(model=MODEL, top_k=8).run(query=QUERY, documents=documents)["documents"]
    model.cache.clear()
    seen: list[int] = []
    original = model.backend.embed_ids

    def counting(sequences, **kwargs):
        seen.append(len(sequences))
        return original(sequences, **kwargs)

    model.backend.embed_ids = counting  # spy on the real model
    try:
        reused = ranker.run(query=QUERY, documents=embedded)["documents"]
        assert seen == [1]  # the listwise prompt only
        seen.clear()
        E2RankRanker(model=MODEL, top_k=8).run(query=QUERY, documents=documents)
        assert sum(seen) == len(documents) + 1
    finally:
        del model.backend.embed_ids
    assert embedded == embedded_before  # the reuse path writes scores on copies too
    assert [d.id for d in reused] == [d.id for d in baseline]
    np.testing.assert_allclose([d.score for d in reused], [d.score for d in baseline], atol=1e-5)


def test_wrong_dimension_embeddings_are_refused(documents) -> None:
    ranker = E2RankRanker(model=MODEL, use_document_embeddings=True)
    bad = [Document(content=d.content, embedding=[0.1] * 16) for d in documents]
    with pytest.raises(ValueError, match=r"dimension 16.*384-dimensional"):
        ranker.run(query=QUERY, documents=bad)
    mixed = [Document(content=d.content, embedding=[0.1] * 384) for d in documents[:-1]]
    mixed.append(Document(content="odd one", embedding=[0.1] * 383))
    with pytest.raises(ValueError, match=r"dimension 383"):
        ranker.run(query=QUERY, documents=mixed)
    # one document without an embedding: the others are reused, that one is encoded
    partial = [*mixed[:-1], Document(content="odd one")]
    assert len(ranker.run(query=QUERY, documents=partial)["documents"]) == len(partial)


def test_edge_cases(documents, minilm: E2RankModel) -> None:
    ranker = E2RankRanker(model=MODEL, top_k=10)
    assert ranker.run(query=QUERY, documents=[]) == {"documents": []}

    # content=None is ranked as the empty text and returned as given
    with_none = [Document(content=None, meta={"title": "nothing"}), *documents[:3]]
    out = ranker.run(query=QUERY, documents=with_none)["documents"]
    assert len(out) == 4
    empty = next(d for d in out if d.content is None)
    expected = minilm.rerank(QUERY, ["", *(d.content for d in documents[:3])])
    assert empty.score == pytest.approx(next(r.score for r in expected if r.index == 0), abs=1e-6)

    # duplicates: one per id, the copy with the best incoming score
    low = Document(id="dup", content=documents[2].content, meta={"copy": "low"}, score=0.1)
    high = Document(id="dup", content=documents[2].content, meta={"copy": "high"}, score=0.9)
    out = ranker.run(query=QUERY, documents=[low, documents[0], high, documents[0]])["documents"]
    assert sorted(d.id for d in out) == sorted(["dup", documents[0].id])
    assert next(d for d in out if d.id == "dup").meta["copy"] == "high"

    assert ranker.run(query=QUERY, documents=documents, score_threshold=1.01)["documents"] == []
    kept = ranker.run(query=QUERY, documents=documents, score_threshold=0.5, scale_score=True)["documents"]
    assert kept and all(d.score >= 0.5 for d in kept)
    assert len(ranker.run(query=QUERY, documents=documents, top_k=2)["documents"]) == 2

    with pytest.raises(ValueError, match="top_k"):
        ranker.run(query=QUERY, documents=documents, top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        E2RankRanker(model=MODEL, top_k=-1)
    with pytest.raises(ValueError, match="query"):
        ranker.run(query="", documents=documents)


def test_meta_fields_enter_the_ranked_text(minilm: E2RankModel) -> None:
    docs = [
        Document(content="The city has many museums.", meta={"title": "Paris, capital of France"}),
        Document(content="The city has many museums.", meta={"title": "Lyon, a French city"}),
    ]
    plain = E2RankRanker(model=MODEL).run(query="capital of France", documents=docs)["documents"]
    assert plain[0].score == pytest.approx(plain[1].score)  # identical content, no meta: a tie
    with_meta = E2RankRanker(model=MODEL, meta_fields_to_embed=["title"]).run(query="capital of France", documents=docs)
    top = with_meta["documents"][0]
    assert top.meta["title"].startswith("Paris")
    expected = minilm.rerank("capital of France", [f"{d.meta['title']}\n{d.content}" for d in docs])
    assert top.score == pytest.approx(expected[0].score, abs=1e-6)
    assert scale_score(top.score) > 0.5


def test_inputs_are_not_mutated(documents) -> None:
    before = copy.deepcopy(documents)
    out = E2RankRanker(model=MODEL, scale_score=True).run(query=QUERY, documents=documents)["documents"]
    assert documents == before and all(d.score is None for d in documents)
    assert {id(d) for d in out}.isdisjoint({id(d) for d in documents})
    embedded = E2RankDocumentEmbedder(model=MODEL, progress_bar=False).run(documents)["documents"]
    assert documents == before and all(len(d.embedding) == 384 for d in embedded)


def test_text_embedder_uses_retrieval_format(minilm: E2RankModel) -> None:
    # the base MiniLM records no instruction, so its default is the bare query: ask for the format explicitly
    vector = E2RankTextEmbedder(model=MODEL, instruction="Find capitals", plain_queries=False).run(text="France")
    vector = vector["embedding"]
    expected = minilm.embed_queries(["France"], instruction="Find capitals", plain=False)[0]
    np.testing.assert_allclose(vector, expected, atol=1e-6)
    plain = E2RankTextEmbedder(model=MODEL, plain_queries=True)
    assert E2RankTextEmbedder.from_dict(plain.to_dict()).plain_queries is True
    bare = minilm.backend.st_model.encode(["France"], normalize_embeddings=True)[0]  # the bare text, no prefix
    np.testing.assert_allclose(plain.run(text="France")["embedding"], bare, atol=1e-5)
    assert not np.allclose(vector, bare, atol=1e-3)
    with pytest.raises(TypeError, match="string"):
        E2RankTextEmbedder(model=MODEL).run(text=["not", "a", "string"])  # type: ignore[arg-type]
