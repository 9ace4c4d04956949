"""One contract, three frameworks: the same suite runs against the Haystack, LlamaIndex and LangChain rerankers.

Each adapter is driven through a small translator below that builds that framework's own objects (a Haystack
``Document``, a LlamaIndex ``NodeWithScore``, a LangChain ``Document``), runs the real component on the real model,
and reads back ``(id, score)`` pairs. Every rule is then checked against ``E2RankModel.rerank`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pytest
from haystack import Document as HaystackDocument
from haystack import Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.e2rank import E2RankDocumentEmbedder, E2RankTextEmbedder
from haystack_integrations.components.rankers.e2rank import E2RankRanker
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.documents import Document as LangChainDocument
from langchain_e2rank import E2RankEmbeddings
from langchain_e2rank import E2RankRerank as LangChainRerank
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.embeddings.e2rank import E2RankEmbedding
from llama_index.postprocessor.e2rank_rerank import E2RankRerank as LlamaRerank

from e2rank_core import E2RankModel, scale_score
from e2rank_core.model_config import read_stored_settings
from e2rank_core.resolve import resolve_model
from e2rank_core.settings import ModelSettings
from tests.hostile import fewer_in_ci, queries, texts  # also loads the hypothesis profile

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED = "e2rank/minilm-l6-e2rank"  # stores its rerank settings (query_weight > 0) in its e2rank_config.json
QUERY = "What is the capital of France?"
TEXTS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital and largest city of France.",
    "Lyon is a large city in France, known for its food.",
    "Madrid is the capital of Spain.",
    "France is a country in Western Europe.",
    "The Eiffel Tower stands in Paris.",
]


@dataclass
class Candidate:
    id: str
    text: str
    score: float | None = None
    vector: list[float] | None = None


Result = list[tuple[str, float]]


def run_haystack(query: str, candidates: list[Candidate], **options: Any) -> Result:
    reuse = options.pop("reuse", False)
    model = options.pop("model", MODEL)
    ranker = E2RankRanker(model=model, use_document_embeddings=reuse, top_k=options.pop("top_k", 100), **options)
    docs = [HaystackDocument(id=c.id, content=c.text, score=c.score, embedding=c.vector) for c in candidates]
    return [(d.id, d.score) for d in ranker.run(query=query, documents=docs)["documents"]]


def run_llama_index(query: str, candidates: list[Candidate], **options: Any) -> Result:
    reuse = options.pop("reuse", False)
    model = options.pop("model", MODEL)
    reranker = LlamaRerank(model=model, use_node_embeddings=reuse, top_n=options.pop("top_k", 100), **options)
    nodes = [NodeWithScore(node=TextNode(id_=c.id, text=c.text, embedding=c.vector), score=c.score) for c in candidates]
    return [(n.node.node_id, n.score) for n in reranker.postprocess_nodes(nodes, QueryBundle(query))]


def run_langchain(query: str, candidates: list[Candidate], **options: Any) -> Result:
    reuse = options.pop("reuse", False)
    model = options.pop("model", MODEL)
    reranker = LangChainRerank(
        model=model, top_n=options.pop("top_k", 100), embedding_metadata_key="vector" if reuse else None, **options
    )
    docs = []
    for c in candidates:
        metadata: dict[str, Any] = {}
        if c.score is not None:
            metadata["score"] = c.score
        if c.vector is not None:
            metadata["vector"] = c.vector
        docs.append(LangChainDocument(page_content=c.text, metadata=metadata, id=c.id))
    return [(d.id, d.metadata["relevance_score"]) for d in reranker.compress_documents(docs, query)]


#: Each reranker, built directly (for checks at construction).
CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "haystack": E2RankRanker,
    "llama_index": LlamaRerank,
    "langchain": LangChainRerank,
}

ADAPTERS: dict[str, Callable[..., Result]] = {
    "haystack": run_haystack,
    "llama_index": run_llama_index,
    "langchain": run_langchain,
}


@pytest.fixture(scope="module")
def shared() -> E2RankModel:
    """The one copy that every adapter below looks up (same model and settings)."""
    return ModelSettings(MODEL, device="cpu").load()


@pytest.fixture(scope="module")
def bundled() -> E2RankModel:
    """The bundled model as every adapter naming it looks it up."""
    return ModelSettings(BUNDLED, device="cpu").load()


@pytest.fixture(params=list(ADAPTERS))
def rerank_with(request) -> Callable[..., Result]:
    return ADAPTERS[request.param]


def candidates(with_scores: bool = False) -> list[Candidate]:
    return [Candidate(f"d{i}", t, float(len(TEXTS) - i) if with_scores else None) for i, t in enumerate(TEXTS)]


def core(model: E2RankModel, query: str, cands: list[Candidate], **options: Any) -> Result:
    hits = model.rerank(
        query,
        [c.text for c in cands],
        first_stage_scores=[c.score for c in cands],
        ids=[c.id for c in cands],
        deduplicate=True,
        **options,
    )
    return [(cands[h.index].id, h.score) for h in hits]


def assert_same(got: Result, expected: Result) -> None:
    assert [i for i, _ in got] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-6)


def test_same_order_and_scores_as_the_core(rerank_with, shared: E2RankModel) -> None:
    got = rerank_with(QUERY, candidates())
    assert_same(got, core(shared, QUERY, candidates()))
    assert got[0][0] == "d1"  # Paris
    assert all(isinstance(s, float) and -1.0 <= s <= 1.0 for _, s in got)


def test_partial_vectors_are_reused_and_the_rest_encoded(rerank_with, shared: E2RankModel) -> None:
    cands = candidates()
    vectors = shared.embed_documents([c.text for c in cands])
    for c, v in list(zip(cands, vectors, strict=True))[::2]:
        c.vector = v.tolist()
    shared.cache.clear()
    before = shared.encoded_texts
    got = rerank_with(QUERY, cands, reuse=True)
    # only the three documents without a vector, plus the prompt (and the query when the model adds it back to the
    # prompt: query_weight > 0), went through the model
    query_pass = 1 if shared.query_weight else 0
    assert shared.encoded_texts - before == len(cands) - len(cands[::2]) + 1 + query_pass
    assert_same(got, core(shared, QUERY, candidates()))


def test_scale_and_threshold_apply_to_the_reported_score(rerank_with, shared: E2RankModel) -> None:
    raw = core(shared, QUERY, candidates())
    scaled = rerank_with(QUERY, candidates(), scale_score=True)
    assert_same(scaled, [(i, scale_score(s)) for i, s in raw])
    cut = scale_score(raw[2][1])  # keep exactly the best three, judged on the scaled score
    kept = rerank_with(QUERY, candidates(), scale_score=True, score_threshold=cut)
    assert [i for i, _ in kept] == [i for i, _ in raw[:3]]
    assert [i for i, _ in rerank_with(QUERY, candidates(), score_threshold=raw[1][1])] == [i for i, _ in raw[:2]]
    assert len(rerank_with(QUERY, candidates(), top_k=2, score_threshold=-1.0)) == 2  # threshold before top-k


def test_duplicates_are_ranked_once_and_not_boosted(rerank_with) -> None:
    paris, berlin = Candidate("paris", TEXTS[1]), Candidate("berlin", TEXTS[0])
    once = rerank_with(QUERY, [berlin, paris])
    twice = rerank_with(QUERY, [berlin, Candidate("berlin", TEXTS[0]), paris])
    assert [i for i, _ in once] == ["paris", "berlin"]
    assert sorted(i for i, _ in twice) == ["berlin", "paris"]
    assert_same(twice, once)


def test_prompt_follows_first_stage_scores_not_arrival_order(rerank_with) -> None:
    # Two retrievers joined in either order: the same documents and scores, different arrival order.
    cands = candidates(with_scores=True)
    forward = rerank_with(QUERY, cands, num_input_docs=3)
    backward = rerank_with(QUERY, cands[::-1], num_input_docs=3)
    assert_same(forward, backward)


@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_model_settings_default_to_the_models_own_and_override_as_in_the_core(
    adapter: str, bundled: E2RankModel
) -> None:
    """``num_input_docs`` and ``query_weight`` left out mean the model's (what its ``e2rank_config.json`` stores);
    given, they are the core's per-call overrides, with the core's exact scores."""
    run = ADAPTERS[adapter]
    cands = candidates(with_scores=True)  # six, so a prompt of three leaves some out
    stored = read_stored_settings(resolve_model(BUNDLED).path)
    assert (bundled.query_weight, bundled.num_input_docs) == (stored.query_weight, stored.num_input_docs)
    assert stored.query_weight > 0  # else (b) below would not tell the default from the paper's score

    # (a) the defaults: exactly E2RankModel.rerank with the model's stored settings
    default = run(QUERY, cands, model=BUNDLED)
    assert_same(default, core(bundled, QUERY, cands))
    assert_same(default, core(bundled, QUERY, cands, **asdict(stored)))

    # (b) query_weight=0: the paper's score, the core's per-call override (and not the default's scores)
    paper = run(QUERY, cands, model=BUNDLED, query_weight=0)
    assert_same(paper, core(bundled, QUERY, cands, query_weight=0))
    assert max(abs(a - b) for (_, a), (_, b) in zip(sorted(paper), sorted(default), strict=True)) > 1e-3

    # (c) num_input_docs: None is the model's, a given value is the core's for that value
    assert_same(run(QUERY, cands, model=BUNDLED, num_input_docs=None), core(bundled, QUERY, cands))
    small = 3 if stored.num_input_docs != 3 else 2
    given = run(QUERY, cands, model=BUNDLED, num_input_docs=small)
    assert_same(given, core(bundled, QUERY, cands, num_input_docs=small))
    assert max(abs(a - b) for (_, a), (_, b) in zip(sorted(given), sorted(default), strict=True)) > 1e-4
    both = run(QUERY, cands, model=BUNDLED, num_input_docs=small, query_weight=0.5)
    assert_same(both, core(bundled, QUERY, cands, num_input_docs=small, query_weight=0.5))


@pytest.mark.parametrize("adapter", list(CONSTRUCTORS))
def test_bad_query_weight_or_prompt_size_fails_at_construction(adapter: str) -> None:
    build = CONSTRUCTORS[adapter]
    for bad, error in [(-1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError), ("x", TypeError)]:
        with pytest.raises(error, match="query_weight"):
            build(model=MODEL, query_weight=bad)
    with pytest.raises(TypeError, match="query_weight"):
        build(model=MODEL, query_weight=True)
    with pytest.raises(ValueError, match="num_input_docs"):
        build(model=MODEL, num_input_docs=0)
    with pytest.raises(TypeError, match="num_input_docs"):
        build(model=MODEL, num_input_docs=2.5)
    built = build(model=MODEL, query_weight=np.float32(0.5), num_input_docs=np.int64(5))
    assert (built.query_weight, built.num_input_docs) == (0.5, 5)
    assert type(built.query_weight) is float and type(built.num_input_docs) is int
    assert (build(model=MODEL).query_weight, build(model=MODEL).num_input_docs) == (None, None)


def test_bad_input_gives_the_same_error_class_everywhere(rerank_with) -> None:
    with pytest.raises(ValueError, match="top_"):
        rerank_with(QUERY, candidates(), top_k=0)
    with pytest.raises(TypeError, match="score_threshold"):
        rerank_with(QUERY, candidates(), score_threshold="abc")
    with pytest.raises(ValueError, match="score_threshold"):
        rerank_with(QUERY, candidates(), score_threshold=float("nan"))
    with pytest.raises(TypeError, match="scale_score"):
        rerank_with(QUERY, candidates(), scale_score="no")
    with pytest.raises(TypeError, match="trust_remote_code"):
        rerank_with(QUERY, candidates(), trust_remote_code="false")
    with pytest.raises(ValueError, match="dtype"):
        rerank_with(QUERY, candidates(), dtype="int8")
    with pytest.raises(TypeError, match="numm_input_docs"):
        rerank_with(QUERY, candidates(), numm_input_docs=3)  # misspelled: an error, never ignored
    wrong = candidates()
    wrong[0].vector = [0.1] * 7
    with pytest.raises(ValueError, match=r"dimension 7.*384-dimensional"):
        rerank_with(QUERY, wrong, reuse=True)
    with pytest.raises(ValueError, match="query"):
        rerank_with("   ", candidates())
    assert rerank_with(QUERY, []) == []


def test_numpy_integers_are_integers(rerank_with) -> None:
    assert len(rerank_with(QUERY, candidates(), top_k=np.int64(2))) == 2


def test_one_loaded_model_across_frameworks() -> None:
    haystack_embedder = E2RankDocumentEmbedder(model=MODEL, device="cpu")
    llama = LlamaRerank(model_name=MODEL)  # LlamaIndex's usual spelling
    langchain = LangChainRerank(model=MODEL)
    assert haystack_embedder.e2rank_model is llama.e2rank_model is langchain.e2rank_model
    assert E2RankTextEmbedder(model=MODEL).e2rank_model is E2RankEmbedding(model=MODEL).e2rank_model
    assert E2RankEmbeddings(model_name=MODEL).e2rank_model is langchain.e2rank_model


def test_haystack_settings_fail_at_load_not_at_run() -> None:
    for bad, error in [
        ({"meta_fields_to_embed": "title"}, TypeError),
        ({"model": ""}, ValueError),
        ({"model": 123}, TypeError),
        ({"embedding_separator": 5}, TypeError),
    ]:
        with pytest.raises(error):
            E2RankRanker.from_dict({"type": f"{E2RankRanker.__module__}.E2RankRanker", "init_parameters": bad})


def test_haystack_joiner_order_does_not_change_the_ranking(shared: E2RankModel) -> None:
    """A hybrid pipeline: two retrievers joined (concatenate), connected in either order, then the ranker."""
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever

    store = InMemoryDocumentStore()
    docs = E2RankDocumentEmbedder(model=MODEL, progress_bar=False).run([HaystackDocument(content=t) for t in TEXTS])
    store.write_documents(docs["documents"])

    def pipeline(first: str, second: str) -> Pipeline:
        p = Pipeline()
        p.add_component("embedder", E2RankTextEmbedder(model=MODEL))
        p.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=4))
        p.add_component("bm25", InMemoryBM25Retriever(store, top_k=4))
        p.add_component("joiner", DocumentJoiner(join_mode="concatenate"))
        p.add_component("ranker", E2RankRanker(model=MODEL, num_input_docs=3, top_k=5))
        p.connect("embedder.embedding", "dense.query_embedding")
        p.connect(f"{first}.documents", "joiner.documents")
        p.connect(f"{second}.documents", "joiner.documents")
        p.connect("joiner.documents", "ranker.documents")
        return p

    inputs = {"embedder": {"text": QUERY}, "bm25": {"query": QUERY}, "ranker": {"query": QUERY}}
    one = pipeline("dense", "bm25").run(inputs)["ranker"]["documents"]
    other = pipeline("bm25", "dense").run(inputs)["ranker"]["documents"]
    assert [d.id for d in one] == [d.id for d in other]
    assert "Paris is the capital" in one[0].content


@pytest.mark.parametrize("adapter", list(ADAPTERS))
@fewer_in_ci(8)  # about a second per example: every call embeds its texts
@given(
    query=queries,
    texts_=st.lists(texts, max_size=6),
    top_k=st.integers(1, 8),
    scored=st.booleans(),
    data=st.data(),
)
def test_any_input_gives_the_cores_answer(
    adapter: str, shared: E2RankModel, query: str, texts_: list[str], top_k: int, scored: bool, data
) -> None:
    """Hostile texts, duplicates, first-stage scores, partial vectors: each adapter answers exactly as the core."""
    cands = [Candidate(f"d{i}", t, float(-i) if scored else None) for i, t in enumerate(texts_)]
    reused = [c for c in cands if data.draw(st.booleans(), label=f"reuse {c.id}")]
    if reused:
        for c, v in zip(reused, shared.embed_documents([c.text for c in reused]), strict=True):
            c.vector = v.tolist()
    before = [Candidate(c.id, c.text, c.score, None if c.vector is None else list(c.vector)) for c in cands]
    got = ADAPTERS[adapter](query, cands, top_k=top_k, reuse=bool(reused))
    assert cands == before  # the inputs are left as they were
    assert_same(got, core(shared, query, cands, top_k=top_k))
    assert len({i for i, _ in got}) == len(got) <= top_k
