"""e2rank eval on the shared IR collections (skipped with a message when ../shared/data is absent)."""

from __future__ import annotations

import json

import pytest
from conftest import require_data

from e2rank_core import E2RankModel
from e2rank_core.cli import main
from e2rank_core.evaluation import evaluate, load_beir, read_run


def test_bm25_run_of_dl19_scores_the_published_number() -> None:
    folder = require_data("trec-dl-2019")
    result = evaluate(None, folder, mode="first-stage")
    assert result.num_queries == 43 and result.first_stage == "bm25_top100.trec"
    assert result.measures["nDCG@10"] == pytest.approx(0.5058, abs=5e-4)


def test_listwise_eval_writes_run_and_summary_and_repeats(minilm: E2RankModel, tmp_path, capsys) -> None:
    folder = require_data("trec-dl-2019")
    argv = [
        "eval",
        "--model",
        "sentence-transformers/all-MiniLM-L6-v2",
        "--data",
        str(folder),
        "--max-queries",
        "2",
        "--depth",
        "30",
        "--measures",
        "nDCG@10",
        "RR(rel=2)",
        "--output",
        str(tmp_path),
    ]
    assert main(argv) == 0
    first = json.loads((tmp_path / "trec-dl-2019.listwise.json").read_text())
    assert first["num_queries"] == 2 and set(first["measures"]) == {"nDCG@10", "RR(rel=2)"}
    run = read_run(tmp_path / "trec-dl-2019.listwise.trec")
    assert len(run) == 2 and all(len(docs) == 30 for docs in run.values())
    assert main(argv) == 0
    second = json.loads((tmp_path / "trec-dl-2019.listwise.json").read_text())
    assert second["measures"] == first["measures"]
    # The run is exactly the core's rerank of the same candidates.
    collection = load_beir(folder)
    qid = sorted(run)[0]
    candidates = read_run(collection.run_path, 30)[qid]
    hits = minilm.rerank(collection.queries[qid], [collection.corpus[d] for d in candidates])
    assert run[qid] == [candidates[h.index] for h in hits]


def test_bm25_fallback_without_run_file(tmp_path) -> None:
    folder = require_data("cisi")
    result = evaluate(None, folder, mode="first-stage", depth=50)
    assert result.first_stage == "bm25s" and result.num_queries == 76
    assert 0.1 < result.measures["nDCG@10"] < 0.9
    again = evaluate(None, folder, mode="first-stage", depth=50)
    assert again.measures == result.measures


def test_bad_arguments() -> None:
    folder = require_data("cisi")
    with pytest.raises(ValueError, match="mode"):
        evaluate(None, folder, mode="pointwise")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a model"):
        evaluate(None, folder, mode="listwise")
    with pytest.raises(FileNotFoundError):
        evaluate(None, folder, mode="first-stage", split="train")
