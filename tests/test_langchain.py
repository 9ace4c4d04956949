"""LangChain: E2RankRerank in a real retriever pipeline and E2RankEmbeddings in a real vector store.

Real objects throughout: the packaged all-MiniLM-L6-v2, langchain-core's InMemoryVectorStore and
langchain-classic's ContextualCompressionRetriever.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator

import numpy as np
import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_e2rank import E2RankEmbeddings, E2RankRerank

from e2rank_core import E2RankModel

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
QUERY = "What is the capital of France?"


@pytest.fixture
def documents(capitals: list[str]) -> list[Document]:
    return [
        Document(page_content=t, metadata={"line": i, "tags": ["geo"]}, id=f"doc-{i}") for i, t in enumerate(capitals)
    ]


@pytest.fixture
def store(documents) -> InMemoryVectorStore:
    vector_store = InMemoryVectorStore(E2RankEmbeddings(model=MODEL))
    vector_store.add_documents(documents)
    return vector_store


@pytest.fixture
def sequences_seen() -> Iterator[list[int]]:
    """A spy on the shared model the adapters load: how many sequences each real forward pass receives."""
    model = E2RankRerank(model=MODEL).e2rank_model
    model.cache.clear()  # the LRU cache would hide re-encoding
    seen: list[int] = []
    original = model.backend.embed_ids

    def counting(sequences, **kwargs):
        seen.append(len(sequences))
        return original(sequences, **kwargs)

    model.backend.embed_ids = counting
    try:
        yield seen
    finally:
        del model.backend.embed_ids


def test_compression_retriever_orders_scores_and_cuts(store, minilm: E2RankModel) -> None:
    base = store.as_retriever(search_kwargs={"k": 8})
    retriever = ContextualCompressionRetriever(base_compressor=E2RankRerank(model=MODEL, top_n=3), base_retriever=base)
    results = retriever.invoke(QUERY)
    assert len(results) == 3
    scores = [d.metadata["relevance_score"] for d in results]
    assert all(type(s) is float for s in scores) and scores == sorted(scores, reverse=True)
    assert "Paris is the capital" in results[0].page_content
    # the same ranking and scores as the core on the retriever's candidates, in the retriever's order
    retrieved = base.invoke(QUERY)
    expected = minilm.rerank(QUERY, [d.page_content for d in retrieved], top_k=3)
    assert [d.id for d in results] == [retrieved[r.index].id for r in expected]
    np.testing.assert_allclose(scores, [r.score for r in expected], atol=1e-5)


def test_threshold_and_top_n_in_a_retriever(store, documents) -> None:
    base = store.as_retriever(search_kwargs={"k": len(documents)})

    def run(**settings) -> list[Document]:
        compressor = E2RankRerank(model=MODEL, **settings)
        return ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base).invoke(QUERY)

    everything = run(top_n=None)
    assert sorted(d.id for d in everything) == sorted(d.id for d in documents)
    scores = sorted((d.metadata["relevance_score"] for d in everything), reverse=True)
    cut = scores[len(scores) // 2]
    kept = run(top_n=None, score_threshold=cut)
    assert [d.metadata["relevance_score"] for d in kept] == [s for s in scores if s >= cut]
    assert [d.id for d in run(top_n=2, score_threshold=cut)] == [d.id for d in kept[:2]]
    assert run(score_threshold=1.01) == []
    assert len(run(top_n=50)) == len(documents)


async def test_async_equals_sync(store, documents) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=4)
    assert await reranker.acompress_documents(documents, QUERY) == reranker.compress_documents(documents, QUERY)
    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=store.as_retriever())
    assert await retriever.ainvoke(QUERY) == retriever.invoke(QUERY)
    embeddings = E2RankEmbeddings(model=MODEL)
    assert await embeddings.aembed_query(QUERY) == embeddings.embed_query(QUERY)
    assert await embeddings.aembed_documents(["a", "b"]) == embeddings.embed_documents(["a", "b"])


def test_lcel_chain(store) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=2)
    chain = {"docs": store.as_retriever(), "query": RunnablePassthrough()} | RunnableLambda(
        lambda x: reranker.compress_documents(x["docs"], x["query"])
    )
    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=store.as_retriever())
    assert chain.invoke(QUERY) == retriever.invoke(QUERY)


def test_embeddings_find_the_relevant_document(store, minilm: E2RankModel) -> None:
    hits = store.similarity_search("Which city is the capital of Australia?", k=2)
    assert "Canberra" in hits[0].page_content
    embeddings = E2RankEmbeddings(model=MODEL)
    vector = embeddings.embed_query(QUERY)
    assert isinstance(vector, list) and type(vector[0]) is float
    np.testing.assert_allclose(vector, minilm.embed_queries([QUERY])[0], atol=1e-5)
    task = "Given a question, retrieve the sentence that answers it"
    np.testing.assert_allclose(
        E2RankEmbeddings(model=MODEL, query_instruction=task, plain_queries=False).embed_query(QUERY),
        minilm.embed_queries([QUERY], instruction=task, plain=False)[0],
        atol=1e-5,
    )
    bare = E2RankEmbeddings(model=MODEL, plain_queries=True).embed_query(QUERY)
    np.testing.assert_allclose(bare, minilm.backend.st_model.encode([QUERY], normalize_embeddings=True)[0], atol=1e-5)
    np.testing.assert_allclose(bare, vector, atol=1e-6)  # the base model records no instruction: bare by default
    vectors = embeddings.embed_documents(["Paris", "Berlin"])
    assert len(vectors) == 2 and type(vectors[0]) is list and type(vectors[0][0]) is float
    assert embeddings.embed_documents([]) == []


def test_reused_embeddings_are_not_reencoded(documents, sequences_seen: list[int]) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=None)
    vectors = E2RankEmbeddings(model=MODEL).embed_documents([d.page_content for d in documents])
    cache = reranker.e2rank_model.cache  # cleared before each measured call: cache hits would hide re-encoding
    cache.clear()
    sequences_seen.clear()
    reused = reranker.compress_documents(documents, QUERY, document_embeddings=vectors)
    assert sequences_seen == [1]  # the listwise prompt only

    cache.clear()
    sequences_seen.clear()
    with_meta = [
        Document(d.page_content, metadata={**d.metadata, "vec": v}, id=d.id)
        for d, v in zip(documents, vectors, strict=True)
    ]
    from_meta = E2RankRerank(model=MODEL, top_n=None, embedding_metadata_key="vec").compress_documents(with_meta, QUERY)
    assert sequences_seen == [1]

    cache.clear()
    sequences_seen.clear()
    baseline = reranker.compress_documents(documents, QUERY)
    assert sum(sequences_seen) == len(documents) + 1  # without reuse every document is encoded

    assert [d.id for d in reused] == [d.id for d in baseline] == [d.id for d in from_meta]
    for other in (reused, from_meta):
        np.testing.assert_allclose(
            [d.metadata["relevance_score"] for d in other],
            [d.metadata["relevance_score"] for d in baseline],
            atol=1e-5,
        )


def test_metadata_vectors_partly_present(documents, sequences_seen: list[int]) -> None:
    vectors = E2RankEmbeddings(model=MODEL).embed_documents([d.page_content for d in documents])
    mixed = [
        Document(d.page_content, metadata={"vec": v} if i % 2 == 0 else {}, id=d.id)
        for i, (d, v) in enumerate(zip(documents, vectors, strict=True))
    ]
    reranker = E2RankRerank(model=MODEL, top_n=None, embedding_metadata_key="vec")
    reranker.e2rank_model.cache.clear()
    sequences_seen.clear()
    ranked = reranker.rerank(mixed, QUERY)
    assert sum(sequences_seen) == len(documents) // 2 + 1  # only the documents without a vector, plus the prompt
    assert [r["index"] for r in ranked] == [r["index"] for r in reranker.rerank(documents, QUERY)]
    wrong = [Document("x", metadata={"vec": [0.5] * 7}), Document("y")]
    with pytest.raises(ValueError, match=r"dimension 7.*384-dimensional"):
        reranker.compress_documents(wrong, QUERY)


def test_rerank_returns_the_order_only(documents, minilm: E2RankModel) -> None:
    texts = [d.page_content for d in documents]
    expected = minilm.rerank(QUERY, texts)
    reranker = E2RankRerank(model=MODEL)
    order = reranker.rerank(texts, QUERY, top_n=None)
    assert [o["index"] for o in order] == [r.index for r in expected]
    np.testing.assert_allclose([o["relevance_score"] for o in order], [r.score for r in expected], atol=1e-5)
    assert all(set(o) == {"index", "relevance_score"} and type(o["relevance_score"]) is float for o in order)
    assert reranker.rerank(texts, QUERY) == order[:3]  # the field's top_n
    mixed = [documents[0], texts[1], *documents[2:]]  # Document and str may be mixed
    assert [o["index"] for o in reranker.rerank(mixed, QUERY, top_n=None)] == [r.index for r in expected]
    assert reranker.rerank([], QUERY) == []
    with pytest.raises(ValueError, match="top_n"):
        reranker.rerank(texts, QUERY, top_n=0)
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        reranker.rerank(["a", 3], QUERY)


def test_edge_cases(documents) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=None)
    assert reranker.compress_documents([], QUERY) == []
    with_empty = [Document(page_content=""), *documents[:2]]
    assert sorted(d.page_content for d in reranker.compress_documents(with_empty, QUERY)) == sorted(
        d.page_content for d in with_empty
    )
    duplicated = [documents[2], documents[2], documents[0]]
    out = reranker.compress_documents(duplicated, QUERY)
    assert [d.id for d in out].count(documents[2].id) == 1 and len(out) == 2  # duplicates are ranked once
    single = reranker.compress_documents([documents[2], documents[0]], QUERY)
    assert [(d.id, d.metadata["relevance_score"]) for d in out] == [
        (d.id, d.metadata["relevance_score"]) for d in single
    ]  # and a document passed twice is not boosted
    for bad in (0, -1):
        with pytest.raises(ValueError, match="top_n"):
            E2RankRerank(model=MODEL, top_n=bad)
    with pytest.raises(ValueError, match="dimension 3"):
        reranker.compress_documents(documents, QUERY, document_embeddings=[[0.1, 0.2, 0.3]] * len(documents))
    with pytest.raises(ValueError, match="rows"):
        reranker.compress_documents(documents, QUERY, document_embeddings=np.zeros((2, 384)))
    with pytest.raises(ValueError, match="query"):
        reranker.compress_documents(documents, "")
    with pytest.raises(TypeError, match=r"documents\[0\]"):
        reranker.compress_documents(["plain text"], QUERY)  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"topn.*did you mean 'top_n'"):
        E2RankRerank(model=MODEL, topn=3)  # a typo is an error, not a silent default
    assert E2RankRerank(model=MODEL, top_k=3).top_n == 3  # the Haystack adapter's spelling is accepted


def test_ids_and_metadata_preserved_inputs_untouched(documents) -> None:
    before = copy.deepcopy(documents)
    out = E2RankRerank(model=MODEL, top_n=None).compress_documents(documents, QUERY)
    assert documents == before
    by_id = {d.id: d for d in documents}
    assert sorted(by_id) == sorted(d.id for d in out)
    for doc in out:
        original = by_id[doc.id]
        assert doc is not original and doc.page_content == original.page_content
        assert {k: v for k, v in doc.metadata.items() if k != "relevance_score"} == original.metadata
        assert doc.metadata["tags"] is not original.metadata["tags"]  # deep copy


def test_one_model_shared_and_not_copied() -> None:
    reranker = E2RankRerank(model=MODEL)
    embeddings = E2RankEmbeddings(model=MODEL)
    assert reranker.e2rank_model is embeddings.e2rank_model  # loaded once per process and settings
    assert copy.deepcopy(reranker).e2rank_model is reranker.e2rank_model  # copies share, never copy weights
    restored = pickle.loads(pickle.dumps(embeddings))
    assert restored.model_dump() == embeddings.model_dump() and restored.e2rank_model is embeddings.e2rank_model
    reranker.device = "cpu"  # the same settings spelled differently on this CPU machine: still one model
    assert reranker.e2rank_model is embeddings.e2rank_model and reranker.e2rank_model.device == "cpu"


# langchain-tests' standard embeddings suites, when that package is installed (it is not a dependency).
try:
    from langchain_tests.integration_tests import EmbeddingsIntegrationTests
    from langchain_tests.unit_tests import EmbeddingsUnitTests
except ImportError:  # pragma: no cover - optional
    pass
else:

    class TestE2RankEmbeddingsStandardUnit(EmbeddingsUnitTests):
        @property
        def embeddings_class(self) -> type[E2RankEmbeddings]:
            return E2RankEmbeddings

        @property
        def embedding_model_params(self) -> dict[str, str]:
            return {"model": MODEL}

    class TestE2RankEmbeddingsStandardIntegration(EmbeddingsIntegrationTests):
        @property
        def embeddings_class(self) -> type[E2RankEmbeddings]:
            return E2RankEmbeddings

        @property
        def embedding_model_params(self) -> dict[str, str]:
            return {"model": MODEL}
