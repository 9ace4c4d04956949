"""Issue #19: the Rocchio-style scoring option, the dev split of the selection protocol, the shipped model's card.

Real models and the real shared collections; nothing is mocked.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR, load_benchmark

from e2rank_core.rocchio import combine_query_embedding


def _selection_module():
    return load_benchmark("selection.py")


def _hand_combine(p: list[float], q: list[float], w: float) -> list[float]:
    """The formula written out in plain Python: normalize(p / |p| + w * q / |q|)."""
    p_norm = math.sqrt(sum(x * x for x in p))
    q_norm = math.sqrt(sum(x * x for x in q))
    mixed = [a / p_norm + w * b / q_norm for a, b in zip(p, q, strict=True)]
    norm = math.sqrt(sum(x * x for x in mixed))
    return [x / norm for x in mixed]


# ------------------------------------------------------------------------------------------ the pure function
@pytest.mark.parametrize("weight", [0.0, 0.25, 0.5, 1.0, 3.0])
def test_combine_matches_hand_computation(weight: float) -> None:
    p, q = [3.0, -1.0, 2.0, 0.5], [0.1, 4.0, -2.0, 1.0]
    got = combine_query_embedding(np.array(p), np.array(q), weight)
    assert got.dtype == np.float32 and got.shape == (4,)
    np.testing.assert_allclose(got, _hand_combine(p, q, weight), rtol=1e-6, atol=1e-7)
    assert math.isclose(float(np.linalg.norm(got)), 1.0, rel_tol=1e-6)


def test_combine_row_wise_on_matrices_and_limits() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
    got = combine_query_embedding(p, q, 0.5)
    for row in range(3):
        np.testing.assert_allclose(got[row], _hand_combine(list(p[row]), list(q[row]), 0.5), rtol=1e-5, atol=1e-6)
    # weight 0 is the paper's listwise score; a large weight tends to the query's own direction
    np.testing.assert_allclose(combine_query_embedding(p, q, 0.0), p / np.linalg.norm(p, axis=1, keepdims=True), 1e-6)
    far = combine_query_embedding(p, q, 1e6)
    np.testing.assert_allclose(far, q / np.linalg.norm(q, axis=1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (([1.0, 0.0], [0.0, 1.0], -0.5), ValueError, "finite and >= 0"),
        (([1.0, 0.0], [0.0, 1.0], float("nan")), ValueError, "finite and >= 0"),
        (([1.0, 0.0], [0.0, 1.0], True), TypeError, "real number"),
        (([1.0, 0.0], [0.0, 1.0], "0.5"), TypeError, "real number"),
        (([1.0, 0.0], [0.0, 1.0, 0.0], 0.5), ValueError, "shape"),
        (([1.0, float("inf")], [0.0, 1.0], 0.5), ValueError, "NaN or infinite"),
        (([0.0, 0.0], [0.0, 1.0], 0.5), ValueError, "all-zero"),
        (([[[1.0]]], [[[1.0]]], 0.5), ValueError, "vector"),
        (([1.0, 0.0], [-1.0, 0.0], 1.0), ValueError, "cancel out"),
        ((["a", "b"], [0.0, 1.0], 1.0), ValueError, "numeric"),
    ],
)
def test_combine_rejects_bad_input(args: tuple, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        combine_query_embedding(*args)


# ------------------------------------------------------------------------------------------ on the real model
@pytest.fixture(scope="module")
def bundled():
    from e2rank_core import E2RankModel

    return E2RankModel("e2rank/minilm-l6-e2rank", device="cpu", cache_size=0)


DOCS = [
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.",
    "Lyon is a large city in France, known for its cuisine.",
    "The Eiffel Tower stands in Paris.",
    "Madrid is the capital of Spain.",
]


def test_weight_zero_is_the_cores_listwise_score() -> None:
    from e2rank_core import E2RankModel

    paper = E2RankModel("e2rank/minilm-l6-e2rank", device="cpu", cache_size=0, query_weight=0)
    query = "What is the capital of France?"
    doc_emb = paper.embed_documents(DOCS)
    prompt = paper.embed_listwise_prompts([query], [DOCS])[0]
    plain = paper.embed_queries([query], plain=True)[0]
    hits = paper.rerank(query, DOCS, document_embeddings=doc_emb)
    scores = doc_emb @ combine_query_embedding(prompt, plain, 0.0)
    assert [h.index for h in hits] == list(np.argsort(-scores, kind="stable"))
    np.testing.assert_allclose([h.score for h in hits], np.sort(scores)[::-1], atol=1e-5)


def test_real_embeddings_combined_score_matches_hand_computation(bundled) -> None:
    query = "What is the capital of France?"
    doc_emb = bundled.embed_documents(DOCS)
    prompt = bundled.embed_listwise_prompts([query], [DOCS])[0]
    plain = bundled.embed_queries([query], plain=True)[0]
    combined = combine_query_embedding(prompt, plain, 0.5)
    mixed = _hand_combine([float(x) for x in prompt], [float(x) for x in plain], 0.5)
    for doc in doc_emb:
        d = [float(x) for x in doc]
        cosine = sum(a * b for a, b in zip(mixed, d, strict=True)) / math.sqrt(sum(x * x for x in d))
        assert math.isclose(float(doc @ combined), cosine, abs_tol=1e-5)
    # the query term moves the scores (else the option would be a no-op on this model)
    assert not np.allclose(doc_emb @ combined, doc_emb @ combine_query_embedding(prompt, plain, 0.0), atol=1e-3)


def test_query_weight_in_rerank_matches_hand_computation() -> None:
    """``E2RankModel(query_weight=w).rerank`` scores every candidate (also past the prompt's 20) by the hand formula
    cos(p/|p| + w q/|q|, d), with q the model's own retrieval query embedding, in every rerank path."""
    from e2rank_core import E2RankModel

    model = E2RankModel("e2rank/minilm-l6-e2rank", device="cpu", query_weight=0.5)
    assert model.query_weight == 0.5 and "query_weight=0.5" in repr(model)
    query = "What is the capital of France?"
    docs = DOCS * 5  # 25 candidates
    doc_emb = model.embed_documents(docs)
    prompt = [float(x) for x in model.embed_listwise_prompts([query], [docs[:20]])[0]]
    q = [float(x) for x in model.embed_queries([query])[0]]
    mixed = _hand_combine(prompt, q, 0.5)
    norm = math.sqrt(sum(x * x for x in mixed))
    expected = [sum(a * float(b) for a, b in zip(mixed, d, strict=True)) / norm for d in doc_emb]
    for hits in (
        model.rerank(query, docs),
        model.rerank(query, docs, document_embeddings=doc_emb),
        model.rerank_batch([query, query], [docs, docs])[1],
    ):
        assert sorted(h.index for h in hits) == list(range(25))
        for h in hits:
            assert math.isclose(h.score, expected[h.index], abs_tol=1e-5)
    # the weight changes the scores, and 0 is the paper's listwise score: the cosine to the prompt embedding
    zero = E2RankModel("e2rank/minilm-l6-e2rank", device="cpu", query_weight=0)
    paper = {h.index: h.score for h in zero.rerank(query, docs)}
    assert max(abs(paper[i] - expected[i]) for i in range(25)) > 1e-3
    unit_prompt = np.asarray(prompt) / np.linalg.norm(prompt)
    assert paper == pytest.approx({i: float(d @ unit_prompt) for i, d in enumerate(doc_emb)}, abs=1e-5)


def test_query_weight_is_read_from_the_model_folder(tmp_path: Path) -> None:
    import json
    import shutil

    from e2rank_core import E2RankModel
    from e2rank_core.model_config import CONFIG_FILE
    from e2rank_core.resolve import resolve_model

    folder = tmp_path / "model"
    shutil.copytree(resolve_model("e2rank/minilm-l6-e2rank").path, folder)
    (folder / CONFIG_FILE).write_text(json.dumps({"query_weight": 2.0}), encoding="utf-8")
    assert E2RankModel(str(folder), device="cpu").query_weight == 2.0
    assert E2RankModel(str(folder), device="cpu", query_weight=0.0).query_weight == 0.0  # an argument wins
    (folder / CONFIG_FILE).write_text(json.dumps({"query_weight": "lots"}), encoding="utf-8")
    with pytest.raises(ValueError, match="query_weight"):
        E2RankModel(str(folder), device="cpu")
    with pytest.raises(ValueError, match="finite and >= 0"):
        E2RankModel("e2rank/minilm-l6-e2rank", device="cpu", query_weight=-1)


def test_num_input_docs_is_read_from_the_model_folder(tmp_path: Path, bundled) -> None:
    """A folder's stored prompt size is the model's default; an argument wins; a bad stored value is an error."""
    import json
    import shutil

    from e2rank_core import E2RankModel
    from e2rank_core.model_config import CONFIG_FILE
    from e2rank_core.resolve import resolve_model

    folder = tmp_path / "model"
    shutil.copytree(resolve_model("e2rank/minilm-l6-e2rank").path, folder)
    (folder / CONFIG_FILE).write_text(json.dumps({"num_input_docs": 5}), encoding="utf-8")
    stored = E2RankModel(str(folder), device="cpu")
    assert (stored.num_input_docs, stored.query_weight) == (5, 0.0)  # no weight stored: the paper's 0
    assert E2RankModel(str(folder), device="cpu", num_input_docs=3).num_input_docs == 3  # an argument wins
    query, docs = "What is the capital of France?", DOCS * 2  # ten candidates: the stored five enter the prompt
    assert stored.build_listwise_prompt(query, docs).count("[5]") == 1
    assert "[6]" not in stored.build_listwise_prompt(query, docs)
    # the same weights and settings: the folder's defaults are the bundled model's per-call overrides
    got = [(h.index, h.score) for h in stored.rerank(query, docs)]
    expected = [(h.index, h.score) for h in bundled.rerank(query, docs, num_input_docs=5, query_weight=0)]
    assert [i for i, _ in got] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-6)
    for bad in (0, -2, 2.5, "20", None):
        (folder / CONFIG_FILE).write_text(json.dumps({"num_input_docs": bad}), encoding="utf-8")
        with pytest.raises(ValueError, match="num_input_docs"):
            E2RankModel(str(folder), device="cpu")


def test_query_weight_per_call_equals_the_constructor_setting(bundled) -> None:
    from e2rank_core import E2RankModel

    query, docs = "What is the capital of France?", DOCS * 5
    paper = E2RankModel("e2rank/minilm-l6-e2rank", device="cpu", cache_size=0, query_weight=0)
    stored_weight = bundled.query_weight  # what the bundled folder stores (> 0)
    assert stored_weight > 0
    for weight, model in ((0, paper), (stored_weight, bundled)):
        per_call = bundled.rerank(query, docs, query_weight=weight)
        setting = model.rerank(query, docs)
        assert [h.index for h in per_call] == [h.index for h in setting]
        np.testing.assert_allclose([h.score for h in per_call], [h.score for h in setting], atol=1e-6)
        batch = bundled.rerank_batch([query], [docs], query_weight=weight)[0]
        np.testing.assert_allclose([h.score for h in batch], [h.score for h in setting], atol=1e-6)
    assert bundled.query_weight == stored_weight  # the per-call override left the model's setting alone
    default = {h.index: h.score for h in bundled.rerank(query, docs)}
    zero = {h.index: h.score for h in bundled.rerank(query, docs, query_weight=0)}
    assert max(abs(default[i] - zero[i]) for i in default) > 1e-3
    with pytest.raises(ValueError, match="query_weight"):
        bundled.rerank(query, docs, query_weight=-1)


# ------------------------------------------------------------------------------------------ the dev split
@pytest.fixture(scope="module")
def selection():
    needed = ["trec-dl-2019", "trec-dl-2021", "scifact", "cranfield", "cisi"]
    missing = [n for n in needed if not (DATA_DIR / n / "corpus.jsonl").is_file()]
    if missing:
        pytest.skip(f"shared IR data not found for {missing} under {DATA_DIR} (set E2RANK_DATA_DIR)")
    module = _selection_module()
    module.DATA = DATA_DIR
    return module


@pytest.fixture(scope="module")
def dev(selection):
    return selection.dev_subsets(DATA_DIR)


def test_dev_split_is_fixed_and_disjoint_from_every_evaluation_query(selection, dev) -> None:
    assert [s.name for s in dev] == ["trec-dl-2021", "scifact-train", "scifact-titles"]
    assert [len(s.queries) for s in dev] == [selection.DL21_DEV, selection.DEV_QUERIES, selection.TITLE_QUERIES]
    again = selection.dev_subsets(DATA_DIR)
    assert [s.queries for s in again] == [s.queries for s in dev]  # seeded: the same split every time
    selection.check_disjoint(dev, DATA_DIR)  # the real files: no id or text of an evaluation query

    # every dev query is training material: DL 2021 / SciFact *train* judgments, or a SciFact title
    from e2rank_core.evaluation import load_beir

    assert set(dev[0].queries) < set(load_beir(DATA_DIR / "trec-dl-2021", "train").qrels)
    assert set(dev[1].queries) < set(load_beir(DATA_DIR / "scifact", "train").qrels)
    # the held-out queries are the ones the training-list builder leaves out
    held_out = selection.dev_query_ids(DATA_DIR)
    assert held_out == {"trec-dl-2021": set(dev[0].queries), "scifact": set(dev[1].queries)}
    test_cited = {d for judged in load_beir(DATA_DIR / "scifact", "test").qrels.values() for d in judged}
    assert all(next(iter(judged)) not in test_cited for judged in dev[2].qrels.values())


def test_training_lists_never_hold_a_dev_query(selection) -> None:
    """``benchmarks/train_minilm.py --holdout-dev`` passes the dev ids to the builder: no list for any of them."""
    from e2rank_core.training import build_lists

    held_out = selection.dev_query_ids(DATA_DIR)["trec-dl-2021"]
    dl21 = selection.dev_subsets(DATA_DIR)[0]
    lists = build_lists(DATA_DIR / "trec-dl-2021", split="train", exclude_queries=held_out)
    trained_texts = {item.query for item in lists}
    assert trained_texts and not trained_texts & set(dl21.queries.values())
    everything = {item.query for item in build_lists(DATA_DIR / "trec-dl-2021", split="train")}
    assert trained_texts == everything - set(dl21.queries.values())


def test_disjointness_check_catches_a_leaked_evaluation_query(selection, dev) -> None:
    dev = copy.deepcopy(dev)
    evaluation = selection.evaluation_queries(DATA_DIR)
    leaked_id, leaked_text = next(iter(evaluation["trec-dl-2019"].items()))
    dev[0].queries[leaked_id] = "a query text nobody evaluates"
    with pytest.raises(AssertionError, match="trec-dl-2019"):
        selection.check_disjoint(dev, DATA_DIR)
    del dev[0].queries[leaked_id]
    dev[2].queries["title-x"] = leaked_text.upper() + " ?"  # the text check ignores case and punctuation
    with pytest.raises(AssertionError, match="is in trec-dl-2019"):
        selection.check_disjoint(dev, DATA_DIR)


def test_shipped_default_is_not_worse_than_base_cosine_on_held_out_dev_queries(selection, dev, minilm) -> None:
    """The issue's floor, on the real model: on the TREC DL 2021 dev queries (held out of training; BM25 top 100) the
    bundled default rerank is at least the base all-MiniLM-L6-v2's plain cosine rerank, and far above the base's
    zero-shot listwise rerank (what training bought)."""
    import ir_measures

    from e2rank_core import E2RankModel

    dl21 = dev[0]
    shipped = E2RankModel("e2rank/minilm-l6-e2rank", device="cpu")
    qrels = [ir_measures.Qrel(q, d, g) for q, judged in dl21.qrels.items() for d, g in judged.items()]

    def ndcg(scores_of) -> float:
        run = []
        for qid, query in dl21.queries.items():
            docs = [d for d in dl21.candidates[qid] if d in dl21.corpus]
            scores = scores_of(query, [dl21.corpus[d] for d in docs])
            run += [ir_measures.ScoredDoc(qid, d, float(s)) for d, s in zip(docs, scores, strict=True)]
        return ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]

    def by_rerank(model):
        def scores(query: str, texts: list[str]) -> list[float]:
            hits = model.rerank(query, texts)
            return [h.score for h in sorted(hits, key=lambda h: h.index)]

        return scores

    def base_cosine(query: str, texts: list[str]) -> list[float]:
        return list(minilm.embed_documents(texts) @ minilm.embed_queries([query], plain=True)[0])

    default, base, zero_shot = ndcg(by_rerank(shipped)), ndcg(base_cosine), ndcg(by_rerank(minilm))
    assert default >= base, (default, base)
    assert default > zero_shot + 0.05, (default, zero_shot)


# ------------------------------------------------------------------------------------------ the shipped model
def test_shipped_model_loads_offline_and_scores_as_its_card_says(bundled, monkeypatch) -> None:
    """The card says what the default rerank is: the listwise prompt (query + top K), with the query weight, both as
    the folder stores them (weight 0 = the paper's cosine to the prompt); the rerank computes exactly that."""
    from e2rank_core.model_config import read_stored_settings
    from e2rank_core.resolve import resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_model("e2rank/minilm-l6-e2rank")
    assert resolved.source == "bundled" and Path(resolved.path, "model.safetensors").is_file()
    card = " ".join(Path(resolved.path, "README.md").read_text(encoding="utf-8").split())
    stored = read_stored_settings(resolved.path)
    weight, k = stored.query_weight, stored.num_input_docs
    assert (bundled.query_weight, bundled.num_input_docs) == (weight, k)
    assert "reranks listwise (" in card
    assert f"the prompt holds the top {k} candidates" in card
    assert f"`query_weight` = {weight:g} and `num_input_docs` = {k} are stored in" in card

    query = "Which city is the capital of France?"
    docs = DOCS * 5  # 25 candidates: the prompt holds the first k, all 25 are scored
    assert k < len(docs)
    hits = bundled.rerank(query, docs)
    doc_emb = bundled.embed_documents(docs)
    prompt = [float(x) for x in bundled.embed_listwise_prompts([query], [docs[:k]])[0]]
    assert bundled.build_listwise_prompt(query, docs).count(f"[{k}]") == 1
    assert f"[{k + 1}]" not in bundled.build_listwise_prompt(query, docs)
    q = [float(x) for x in bundled.embed_queries([query])[0]]
    target = _hand_combine(prompt, q, weight)  # weight 0: the unit prompt embedding
    by_index = {h.index: h.score for h in hits}
    for i, doc in enumerate(doc_emb):
        d = [float(x) for x in doc]
        cosine = sum(a * b for a, b in zip(target, d, strict=True)) / math.sqrt(sum(x * x for x in d))
        assert math.isclose(by_index[i], cosine, abs_tol=1e-5)
