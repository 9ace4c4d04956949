"""LangChain: E2RankRerank in a real retriever pipeline and E2RankEmbeddings in a real vector store."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
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


def test_compression_retriever_orders_scores_and_cuts(store, minilm: E2RankModel) -> None:
    retriever = ContextualCompressionRetriever(
        base_compressor=E2RankRerank(model=MODEL, top_n=3), base_retriever=store.as_retriever(search_kwargs={"k": 8})
    )
    results = retriever.invoke(QUERY)
    assert len(results) == 3
    scores = [d.metadata["relevance_score"] for d in results]
    assert all(type(s) is float for s in scores) and scores == sorted(scores, reverse=True)
    assert "Paris is the capital" in results[0].page_content
    retrieved = store.as_retriever(search_kwargs={"k": 8}).invoke(QUERY)
    expected = minilm.rerank(QUERY, [d.page_content for d in retrieved], top_k=3)
    assert [d.page_content for d in results] == [r.document for r in expected]
    np.testing.assert_allclose(scores, [r.score for r in expected], atol=1e-6)


def test_threshold_and_top_n(documents) -> None:
    everything = E2RankRerank(model=MODEL, top_n=None).compress_documents(documents, QUERY)
    assert len(everything) == len(documents)
    cut = sorted(d.metadata["relevance_score"] for d in everything)[len(documents) // 2]
    kept = E2RankRerank(model=MODEL, top_n=None, score_threshold=cut).compress_documents(documents, QUERY)
    assert kept and all(d.metadata["relevance_score"] >= cut for d in kept) and len(kept) < len(documents)
    assert E2RankRerank(model=MODEL, score_threshold=1.01).compress_documents(documents, QUERY) == []
    assert len(E2RankRerank(model=MODEL, top_n=50).compress_documents(documents, QUERY)) == len(documents)


async def test_async_equals_sync(store, documents) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=4)
    sync = reranker.compress_documents(documents, QUERY)
    asynchronous = await reranker.acompress_documents(documents, QUERY)
    assert sync == asynchronous
    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=store.as_retriever())
    assert await retriever.ainvoke(QUERY) == retriever.invoke(QUERY)
    embeddings = E2RankEmbeddings(model=MODEL)
    assert await embeddings.aembed_query(QUERY) == embeddings.embed_query(QUERY)
    assert await embeddings.aembed_documents(["a", "b"]) == embeddings.embed_documents(["a", "b"])


def test_embeddings_find_the_relevant_document(store, minilm: E2RankModel) -> None:
    hits = store.similarity_search("Which city is the capital of Australia?", k=2)
    assert "Canberra" in hits[0].page_content
    vector = E2RankEmbeddings(model=MODEL).embed_query(QUERY)
    np.testing.assert_allclose(vector, minilm.embed_queries([QUERY])[0], atol=1e-6)
    assert isinstance(vector, list) and isinstance(vector[0], float)


def test_reused_embeddings_are_not_reencoded(documents, minilm: E2RankModel) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=None)
    baseline = reranker.compress_documents(documents, QUERY)
    vectors = E2RankEmbeddings(model=MODEL).embed_documents([d.page_content for d in documents])
    model = reranker.e2rank_model
    model.cache.clear()
    seen: list[int] = []
    original = model.backend.embed_ids

    def counting(sequences, **kwargs):
        seen.append(len(sequences))
        return original(sequences, **kwargs)

    model.backend.embed_ids = counting  # spy on the real model
    try:
        reused = reranker.compress_documents(documents, QUERY, document_embeddings=vectors)
        assert seen == [1]
        seen.clear()
        with_meta = [
            Document(d.page_content, metadata={**d.metadata, "vec": v}, id=d.id)
            for d, v in zip(documents, vectors, strict=True)
        ]
        from_meta = E2RankRerank(model=MODEL, top_n=None, embedding_metadata_key="vec").compress_documents(
            with_meta, QUERY
        )
        assert seen == [1]
    finally:
        del model.backend.embed_ids
    assert [d.id for d in reused] == [d.id for d in baseline] == [d.id for d in from_meta]
    np.testing.assert_allclose(
        [d.metadata["relevance_score"] for d in reused], [d.metadata["relevance_score"] for d in baseline], atol=1e-5
    )


def test_rerank_returns_the_order_only(documents, minilm: E2RankModel) -> None:
    order = E2RankRerank(model=MODEL).rerank([d.page_content for d in documents], QUERY, top_n=None)
    expected = minilm.rerank(QUERY, [d.page_content for d in documents])
    assert [o["index"] for o in order] == [r.index for r in expected]
    assert set(order[0]) == {"index", "relevance_score"}


def test_edge_cases(documents) -> None:
    reranker = E2RankRerank(model=MODEL, top_n=None)
    assert reranker.compress_documents([], QUERY) == []
    with_empty = [Document(page_content=""), *documents[:2]]
    assert len(reranker.compress_documents(with_empty, QUERY)) == 3
    duplicated = [documents[2], documents[2], documents[0]]
    out = reranker.compress_documents(duplicated, QUERY)
    assert len(out) == 3
    twins = [d for d in out if d.id == documents[2].id]
    assert twins[0].metadata["relevance_score"] == pytest.approx(twins[1].metadata["relevance_score"])
    with pytest.raises(ValueError, match="top_n"):
        E2RankRerank(model=MODEL, top_n=0)
    with pytest.raises(ValueError, match="dimension 3"):
        reranker.compress_documents(documents, QUERY, document_embeddings=[[0.1, 0.2, 0.3]] * len(documents))
    with pytest.raises(ValueError, match="query"):
        reranker.compress_documents(documents, "")


def test_ids_and_metadata_preserved_inputs_untouched(documents) -> None:
    before = copy.deepcopy(documents)
    out = E2RankRerank(model=MODEL, top_n=None).compress_documents(documents, QUERY)
    assert documents == before
    by_id = {d.id: d for d in documents}
    for doc in out:
        original = by_id[doc.id]
        assert doc.page_content == original.page_content
        assert {k: v for k, v in doc.metadata.items() if k != "relevance_score"} == original.metadata
        assert doc.metadata["tags"] is not original.metadata["tags"]  # deep copy
