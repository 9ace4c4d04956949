"""Hostile input, kept as tests: each reproducer of the hardening issue, and property-based suites over the public API.

The property suites run a CI-sized number of examples; ``HYPOTHESIS_PROFILE=long`` runs thousands on demand:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q tests/test_hardening.py tests/test_adapter_contract.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from e2rank_core import E2RankModel
from e2rank_core.cli import main
from e2rank_core.scoring import l2_normalize
from tests.hostile import queries, texts  # also loads the hypothesis profile

QUERY = "What is the capital of France?"
DOCS = ["Paris is the capital of France.", "Berlin is in Germany.", "Lyon is in France.", "Oslo is in Norway."]


# ---------------------------------------------------------------------------------------------- 1. long queries
def test_long_query_keeps_every_document_and_the_closing_token(minilm: E2RankModel) -> None:
    backend = minilm.backend
    encoded = backend.encode_prompt("word " * 500, ["first document", "second document"])
    assert len(encoded.input_ids) <= backend.max_prompt_tokens
    assert encoded.input_ids[-1] == backend.tokenizer.sep_token_id  # the closing [SEP] survives
    assert "[1] first document" in encoded.text and "[2] second document" in encoded.text
    # the returned text is exactly what is embedded
    assert backend.tokenizer(encoded.text, split_special_tokens=True)["input_ids"] == encoded.input_ids
    assert minilm.build_listwise_prompt("word " * 500, ["first document", "second document"]) == encoded.text


@given(query=queries, documents=st.lists(texts, min_size=1, max_size=6))
def test_prompt_always_fits_and_is_what_it_says(minilm: E2RankModel, query: str, documents: list[str]) -> None:
    backend = minilm.backend
    encoded = backend.encode_prompt(query, documents)
    assert len(encoded.input_ids) <= backend.max_prompt_tokens
    assert backend.tokenizer(encoded.text, split_special_tokens=True)["input_ids"] == encoded.input_ids


# ---------------------------------------------------------------------------------------------- 2. magnitudes
@pytest.mark.parametrize("factor", [1e-25, 1e-12, 1.0, 1e20, 1e35])
def test_any_finite_magnitude_is_scored_by_cosine(minilm: E2RankModel, factor: float) -> None:
    vectors = minilm.embed_documents(DOCS)
    expected = minilm.rerank(QUERY, DOCS, document_embeddings=vectors)
    scaled = minilm.rerank(QUERY, DOCS, document_embeddings=vectors.astype(np.float64) * factor)
    assert [h.index for h in scaled] == [h.index for h in expected]
    np.testing.assert_allclose([h.score for h in scaled], [h.score for h in expected], atol=1e-6)


def test_normalisation_is_exact_and_keeps_zero_rows() -> None:
    rows = np.array([[3e-30, 4e-30], [3e300, 4e300], [0.0, 0.0]])
    np.testing.assert_allclose(l2_normalize(rows), [[0.6, 0.8], [0.6, 0.8], [0.0, 0.0]], atol=1e-7)


@pytest.mark.parametrize(
    "bad, error",
    [
        (lambda v: v.astype(np.complex64), TypeError),
        (lambda v: v.astype(str), TypeError),
        (lambda v: np.where(np.eye(*v.shape, dtype=bool), np.nan, v), ValueError),
        (lambda v: v[:, :10], ValueError),
        (lambda v: v[:2], ValueError),
    ],
)
def test_bad_embeddings_are_refused(minilm: E2RankModel, bad, error) -> None:
    vectors = minilm.embed_documents(DOCS)
    with pytest.raises(error):
        minilm.rerank(QUERY, DOCS, document_embeddings=bad(vectors))


# ---------------------------------------------------------------------------------------------- 3. devices
def test_unavailable_device_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no cuda device"):
        E2RankModel("sentence-transformers/all-MiniLM-L6-v2", device="cuda")


# ---------------------------------------------------------------------------------------------- 5. loose checks
def test_numbers_and_batch_sizes(minilm: E2RankModel) -> None:
    assert len(minilm.rerank(QUERY, DOCS, top_k=np.int64(2))) == 2
    assert len(minilm.rerank(QUERY, DOCS, num_input_docs=np.int32(2))) == 4
    for bad, error in [(0, ValueError), (-1, ValueError), (True, TypeError), (2.5, TypeError)]:
        with pytest.raises(error, match="batch_size"):
            minilm.embed_documents(DOCS, batch_size=bad)
    with pytest.raises(ValueError, match="surrogate"):
        minilm.rerank(QUERY, ["fine", "broken \ud800 text"])
    with pytest.raises(ValueError, match="score_threshold"):
        minilm.rerank(QUERY, DOCS, score_threshold=float("nan"))


# ---------------------------------------------------------------------------------------------- properties
@given(query=queries, documents=st.lists(texts, max_size=8), top_k=st.one_of(st.none(), st.integers(1, 10)))
def test_rerank_is_a_valid_ranking(minilm: E2RankModel, query: str, documents: list[str], top_k: int | None) -> None:
    before = list(documents)
    hits = minilm.rerank(query, documents, top_k=top_k)
    assert documents == before  # inputs never mutated
    assert len(hits) == min(len(documents), top_k or len(documents))
    assert len({h.index for h in hits}) == len(hits)
    assert all(documents[h.index] is h.document and -1.0001 <= h.score <= 1.0001 for h in hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


@given(query=queries, documents=st.lists(texts, min_size=1, max_size=6), data=st.data())
def test_partial_vectors_equal_encoding(minilm: E2RankModel, query: str, documents: list[str], data) -> None:
    vectors = minilm.embed_documents(documents)
    mask = data.draw(st.lists(st.booleans(), min_size=len(documents), max_size=len(documents)))
    partial = [v if keep else None for v, keep in zip(vectors, mask, strict=True)]
    full = minilm.rerank(query, documents)
    mixed = minilm.rerank(query, documents, document_embeddings=partial)
    np.testing.assert_allclose([h.score for h in mixed], [h.score for h in full], atol=1e-5)


@given(documents=st.lists(texts, max_size=6), batch_size=st.integers(1, 8))
def test_embeddings_are_unit_or_zero(minilm: E2RankModel, documents: list[str], batch_size: int) -> None:
    vectors = minilm.embed_documents(documents, batch_size=batch_size)
    assert vectors.shape == (len(documents), minilm.dimension) and vectors.dtype == np.float32
    norms = np.linalg.norm(vectors, axis=1)
    assert np.all(np.isfinite(vectors)) and np.all((np.abs(norms - 1) < 1e-4) | (norms == 0))


# ---------------------------------------------------------------------------------------------- determinism
def test_threads_and_asyncio_give_identical_results(minilm: E2RankModel) -> None:
    expected = [(h.index, h.score) for h in minilm.rerank(QUERY, DOCS)]
    seen: list[list[tuple[int, float]]] = []

    def work() -> None:
        for _ in range(5):
            seen.append([(h.index, h.score) for h in minilm.rerank(QUERY, DOCS)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def burst() -> list[list[tuple[int, float]]]:
        calls = [asyncio.to_thread(minilm.rerank, QUERY, DOCS) for _ in range(10)]
        return [[(h.index, h.score) for h in hits] for hits in await asyncio.gather(*calls)]

    seen.extend(asyncio.run(burst()))
    assert len(seen) == 30 and all(result == expected for result in seen)


# ---------------------------------------------------------------------------------------------- 6. history
PASSAGES = [
    "Fleas go through four stages: egg, larva, pupa and adult; the whole cycle takes two weeks to eight months.",
    "An adult flea lives up to a year on a host.",
    "Paris is the capital of France.",
    "Flea eggs hatch in two to twelve days depending on temperature and humidity, then the larvae avoid light.",
    "Concrete floors are cheap.",
    "The cat flea is the most common flea on dogs and cats.",
    "Ticks are not insects.",
    "A short one.",
]


def test_texts_that_tokenise_alike_share_one_vector_whatever_came_before(minilm: E2RankModel) -> None:
    minilm.cache.clear()
    minilm.embed_documents(["", PASSAGES[0]])  # "" embedded next to a long passage (padded batch)
    alone = minilm.embed_documents([" \t"])  # same token ids as "", a different text: not re-encoded
    both = minilm.embed_documents(["\n", " "])
    assert np.array_equal(alone[0], minilm.embed_documents([""])[0]) and np.array_equal(both[0], both[1])
    minilm.cache.clear()
    encoded = minilm.encoded_texts
    vectors = minilm.embed_documents(["", " \t", "x", "\n"])  # one forward row for the three blank texts
    assert minilm.encoded_texts - encoded == 2 and np.array_equal(vectors[0], vectors[3])
    hits = minilm.rerank("blank", ["x", "", " \t", "\n"])
    blanks = [h.index for h in hits if h.index != 0]
    assert blanks == [1, 2, 3]  # an exact tie keeps the input order


def test_history_cannot_change_a_ranking_in_exact_mode() -> None:
    """float64: a vector depends on its tokens only, so cached, uncached and batched runs agree to the bit."""
    exact = E2RankModel("sentence-transformers/all-MiniLM-L6-v2", device="cpu", dtype="float64")
    queries = ["how long is the life cycle of a flea", "what is the capital of france"]
    lists = [PASSAGES, PASSAGES[::-1][:6]]
    one_by_one = np.stack([exact.embed_documents([p])[0] for p in PASSAGES])
    exact.cache.clear()
    assert np.array_equal(exact.embed_documents(PASSAGES[::-1])[::-1], one_by_one)  # batched, padded, reversed
    cached = [[(h.index, h.score) for h in exact.rerank(q, docs)] for q, docs in zip(queries, lists, strict=True)]
    exact.cache.clear()
    fresh = [[(h.index, h.score) for h in exact.rerank(q, docs)] for q, docs in zip(queries, lists, strict=True)]
    exact.cache.clear()
    batched = [[(h.index, h.score) for h in hits] for hits in exact.rerank_batch(queries, lists)]
    assert cached == fresh == batched
    assert cached[0][0][0] in (0, 3) and exact.embed_documents(["x"]).dtype == np.float32


# ---------------------------------------------------------------------------------------------- 7. the CLI
@pytest.mark.parametrize(
    "content, message",
    [(b"", "no documents"), (b"  \n\t\n", "no documents"), (b"\xff\xfe broken", "not UTF-8")],
)
def test_cli_input_errors_before_the_model_loads(tmp_path: Path, capsys, content: bytes, message: str) -> None:
    path = tmp_path / "docs.txt"
    path.write_bytes(content)
    # an unknown model name proves the model is never loaded: the input error comes first
    assert main(["rerank", "-q", "x", "--model", "no-such/model", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) * (message == "not UTF-8") in err and "Traceback" not in err


def test_cli_exit_codes_are_one_rule(tmp_path: Path, capsys) -> None:
    bad_json = tmp_path / "docs.jsonl"
    bad_json.write_text("{not json\n", encoding="utf-8")
    assert main(["rerank", "-q", "x", "--input-format", "jsonl", str(bad_json)]) == 2
    assert main(["rerank", "-q", "x", str(tmp_path / "missing.txt")]) == 2
    assert main(["rerank", "-q", "   ", str(bad_json)]) == 2
    assert main(
        [
            "rerank",
            "-q",
            "x",
            "--device",
            "cuda",
            "--model",
            "sentence-transformers/all-MiniLM-L6-v2",
            str(Path(__file__).parents[1] / "examples" / "data" / "capitals.txt"),
        ]
    ) in (0, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("e2rank: error:") >= 3


def test_cli_prints_no_traceback_in_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("", encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "e2rank_core.cli", "rerank", "-q", "x", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no documents" in out.stderr
