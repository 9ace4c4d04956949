"""Scale-out on Ray: ``e2rank embed`` / ``rerank-run`` / ``eval`` with ``--engine ray --workers 2`` equal ``--engine
local``, stored vectors are reused, bad records and setup errors are reported clearly.

One local Ray cluster (2 CPUs) serves the whole module; the data is a real slice of TREC DL 2019 (5 queries x their
BM25 top 20, the 100 passages they name) from ``../shared/data``, written to a temporary folder.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from e2rank_core.cli import main
from tests.conftest import require_data

pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

N_QUERIES, DEPTH = 5, 20


def _read_run(path: Path) -> dict[str, list[tuple[str, float]]]:
    ranking: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, _, doc, _, score, _ = line.split()
        ranking.setdefault(qid, []).append((doc, float(score)))
    return ranking


def assert_same_run(a: Path, b: Path, tol: float = 1e-6) -> None:
    """Same queries in the same order, same documents in the same order, scores within ``tol``."""
    run_a, run_b = _read_run(a), _read_run(b)
    assert list(run_a) == list(run_b)
    assert len(run_a) == N_QUERIES
    for qid in run_a:
        assert [d for d, _ in run_a[qid]] == [d for d, _ in run_b[qid]], qid
        np.testing.assert_allclose([s for _, s in run_a[qid]], [s for _, s in run_b[qid]], rtol=0, atol=tol)


@pytest.fixture(scope="module")
def dl19(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR folder with 5 judged TREC DL 2019 queries, their BM25 top 20 and the passages they name."""
    source = require_data("trec-dl-2019")
    folder = tmp_path_factory.mktemp("dl19-slice")
    qrels = (source / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    judged = {line.split("\t")[0] for line in qrels[1:]}
    lines = (source / "bm25_top100.trec").read_text(encoding="utf-8").splitlines()
    qids: list[str] = []
    for line in lines:
        qid = line.split()[0]
        if qid in judged and qid not in qids:
            qids.append(qid)
    qids = qids[:N_QUERIES]
    run = [line for line in lines if line.split()[0] in qids]  # the full top 100; rerank-run cuts to --depth
    (folder / "run.trec").write_text("\n".join(run) + "\n", encoding="utf-8")
    docs = {line.split()[2] for line in run if int(line.split()[3]) <= DEPTH}
    with (source / "corpus.jsonl").open(encoding="utf-8") as handle:
        corpus = [line for line in handle if json.loads(line)["_id"] in docs]
    (folder / "corpus.jsonl").write_text("".join(corpus), encoding="utf-8")
    with (source / "queries.jsonl").open(encoding="utf-8") as handle:
        queries = [line for line in handle if json.loads(line)["_id"] in qids]
    (folder / "queries.jsonl").write_text("".join(queries), encoding="utf-8")
    (folder / "qrels").mkdir()
    keep = [qrels[0]] + [line for line in qrels[1:] if line.split("\t")[0] in qids]
    (folder / "qrels" / "test.tsv").write_text("\n".join(keep) + "\n", encoding="utf-8")
    assert len(corpus) == len(docs) and len(queries) == N_QUERIES
    return folder


@pytest.fixture(scope="module")
def local(dl19: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The local engine's outputs: embeddings, a run reusing them, a run encoding the documents, and how many
    sequences the reuse run sent through the model."""
    from e2rank_core.scale import EngineOptions

    out = tmp_path_factory.mktemp("local")
    common = ["--quiet"]
    assert main(["embed", "--data", str(dl19), "--output", str(out / "emb.parquet"), *common]) == 0
    model = EngineOptions().load_model()  # the very model the commands above and below use (shared_model)
    model.cache.clear()  # the embed run cached every passage: start cold, so reuse must come from the file
    before = model.encoded_texts
    args = ["rerank-run", "--data", str(dl19), "--run", str(dl19 / "run.trec"), "--depth", str(DEPTH), *common]
    assert main([*args, "--output", str(out / "reuse.trec"), "--embeddings", str(out / "emb.parquet")]) == 0
    reuse_forward = model.encoded_texts - before
    model.cache.clear()
    assert main([*args, "--output", str(out / "encode.trec")]) == 0
    return {"dir": out, "reuse_forward": reuse_forward, "passes_per_query": 2 if model.query_weight else 1}


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def test_reuse_costs_one_forward_pass_per_query_and_equals_encoding(local: dict[str, object]) -> None:
    out = local["dir"]
    assert isinstance(out, Path)
    # the prompts (and queries, when the model's query_weight adds them back) only: no passage was encoded
    assert local["reuse_forward"] == N_QUERIES * local["passes_per_query"]
    assert_same_run(out / "reuse.trec", out / "encode.trec")
    lines = (out / "reuse.trec").read_text(encoding="utf-8").splitlines()
    assert len(lines) == N_QUERIES * DEPTH and lines[0].split()[3] == "1" and lines[0].endswith(" e2rank")


def test_embed_on_ray_equals_local(ray_cluster, dl19: Path, local: dict[str, object], tmp_path: Path) -> None:
    out = tmp_path / "ray.parquet"
    assert main(["embed", "--data", str(dl19), "--output", str(out), "--engine", "ray", "--workers", "2"]) == 0
    ours, theirs = pq.read_table(out), pq.read_table(Path(str(local["dir"])) / "emb.parquet")
    assert ours.schema == theirs.schema and str(ours.schema.field("vector").type).startswith("fixed_size_list")
    assert ours.column("id").to_pylist() == theirs.column("id").to_pylist()  # corpus order, every record once
    first = np.array(ours.column("vector").to_pylist(), dtype=np.float32)
    second = np.array(theirs.column("vector").to_pylist(), dtype=np.float32)
    assert first.shape == (ours.num_rows, 384)
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-6)


def test_rerank_run_on_ray_equals_local(ray_cluster, dl19: Path, local: dict[str, object], tmp_path: Path) -> None:
    out = Path(str(local["dir"]))
    ray_run = tmp_path / "ray.trec"
    args = ["rerank-run", "--data", str(dl19), "--run", str(dl19 / "run.trec"), "--depth", str(DEPTH)]
    engine = ["--engine", "ray", "--workers", "2", "--batch-size", "4"]
    assert main([*args, "--output", str(ray_run), "--embeddings", str(out / "emb.parquet"), *engine]) == 0
    assert_same_run(ray_run, out / "reuse.trec")
    assert_same_run(ray_run, out / "encode.trec")


def test_eval_on_ray_equals_local(ray_cluster, dl19: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The eval path encodes the passages on the workers (no stored vectors) and scores the same run."""
    args = ["eval", "--data", str(dl19), "--run", str(dl19 / "run.trec"), "--depth", str(DEPTH)]
    assert main([*args, "--output", str(tmp_path / "local")]) == 0
    assert main([*args, "--output", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]) == 0
    name = f"{dl19.name}.listwise"
    assert_same_run(tmp_path / "ray" / f"{name}.trec", tmp_path / "local" / f"{name}.trec", tol=1.5e-6)
    local_summary = json.loads((tmp_path / "local" / f"{name}.json").read_text(encoding="utf-8"))
    ray_summary = json.loads((tmp_path / "ray" / f"{name}.json").read_text(encoding="utf-8"))
    assert local_summary["model"] == ray_summary["model"] and ray_summary["num_queries"] == N_QUERIES
    assert ray_summary["measures"]["nDCG@10"] == pytest.approx(local_summary["measures"]["nDCG@10"], abs=1e-6)


def test_bad_record_in_a_worker_is_reported(
    ray_cluster, dl19: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    records = (dl19 / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(records[57])
    bad["text"] = None
    records[57] = json.dumps(bad)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(records) + "\n", encoding="utf-8")
    capsys.readouterr()
    base = ["embed", "--data", str(corpus), "--output", str(tmp_path / "x.parquet"), "--quiet"]
    assert main([*base, "--engine", "ray", "--workers", "1"]) == 2
    expected = f"bad record in corpus.jsonl: record _id={bad['_id']!r}: 'text' must be a string, got null"
    assert f"e2rank: error: {expected}" in capsys.readouterr().err.splitlines()  # one line, not a traceback
    assert main(base) == 2  # the local engine says the same, with the line number
    assert f"record _id={bad['_id']!r} (line 58): 'text' must be a string, got null" in capsys.readouterr().err


def test_setup_errors_are_one_line(ray_cluster, dl19: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    embed = ["embed", "--data", str(dl19), "--output", str(tmp_path / "x.parquet"), "--engine", "ray"]
    assert main([*embed, "--workers", "9"]) == 2  # 9 actors cannot be placed on 2 CPUs: fail, do not wait
    assert "too few for 9 workers" in capsys.readouterr().err
    assert main([*embed, "--gpus-per-worker", "1"]) == 2
    assert "needs 1 GPUs; the cluster has 0" in capsys.readouterr().err
    shuffled = tmp_path / "shuffled.trec"
    lines = (dl19 / "run.trec").read_text(encoding="utf-8").splitlines()
    shuffled.write_text("\n".join([*lines[:3], *lines[150:153], *lines[3:6]]) + "\n", encoding="utf-8")
    rerank = ["rerank-run", "--data", str(dl19), "--run", str(shuffled), "--output", str(tmp_path / "r.trec")]
    assert main(rerank) == 2
    assert "are not consecutive" in capsys.readouterr().err


def test_missing_ray_extra(dl19: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as without the extra
    assert main(["embed", "--data", str(dl19), "--output", str(tmp_path / "x.parquet"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("e2rank: error: --engine ray needs Ray") and "pip install 'e2rank[ray]'" in err
    assert "\n" not in err


def test_unreachable_cluster_fails_fast() -> None:
    from e2rank_core.scale import ScaleError
    from e2rank_core.scale.ray_engine import check_reachable

    for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):  # nothing listens on port 1
        with pytest.raises(ScaleError, match=r"cannot reach the Ray cluster at .*127\.0\.0\.1:1"):
            check_reachable(address)
    with pytest.raises(ScaleError, match="--ray-address must be"):
        check_reachable("not an address")
    check_reachable("auto")  # left to Ray


def test_cli_does_not_import_ray_until_asked() -> None:
    code = "import sys, e2rank_core, e2rank_core.cli as c; c.build_parser(); print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_serve_on_ray_answers_a_cohere_client_like_the_plain_service(ray_cluster) -> None:
    cohere = pytest.importorskip("cohere")
    httpx = pytest.importorskip("httpx")
    from fastapi.testclient import TestClient
    from ray import serve

    from e2rank_core.scale import EngineOptions
    from e2rank_core.scale.serve_ray import deploy, parse_autoscale
    from e2rank_core.server import create_app
    from e2rank_core.server.settings import ServerSettings
    from tests.server_fixture import free_port

    assert parse_autoscale("1:4") == (1, 4)
    with pytest.raises(ValueError, match="MIN:MAX"):
        parse_autoscale("4:1")
    query = "how long is the life cycle of a flea"
    documents = [
        "The flea life cycle takes two weeks to eight months, depending on temperature and hosts.",
        "Paris is the capital of France.",
        "Adult fleas live up to a year on a host; eggs hatch in two to twelve days.",
        "Concrete flooring costs depend on the finish.",
    ]
    embed_body = {
        "model": "e2rank",
        "texts": documents[:2],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        deploy(None, ServerSettings(), port=port, replicas=2, num_cpus=0.5)
        assert serve.status().applications["e2rank"].deployments["E2RankService"].status == "HEALTHY"
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200  # replicas load in their constructor
        client = cohere.ClientV2(api_key="any-token", base_url=url)
        over_ray = client.rerank(model="e2rank", query=query, documents=documents, top_n=3)
        embedded = client.embed(
            model="e2rank", texts=documents[:2], input_type="search_document", embedding_types=["float"]
        )
    finally:
        serve.shutdown()
    with TestClient(create_app(EngineOptions().load_model())) as plain:
        body = {"model": "e2rank", "query": query, "documents": documents, "top_n": 3}
        expected = plain.post("/v2/rerank", json=body).json()["results"]
        vectors = plain.post("/v2/embed", json=embed_body).json()["embeddings"]["float"]
    assert [r.index for r in over_ray.results] == [r["index"] for r in expected] and expected[0]["index"] in (0, 2)
    np.testing.assert_allclose(
        [r.relevance_score for r in over_ray.results], [r["relevance_score"] for r in expected], rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(np.array(embedded.embeddings.float_), np.array(vectors), rtol=0, atol=1e-6)


def test_serve_command_takes_the_ray_options(capsys: pytest.CaptureFixture) -> None:
    """`e2rank serve --ray` is the serve command's own option; bad Ray settings are one line, before any cluster."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--ray" in capsys.readouterr().out
    assert main(["serve", "--ray", "--autoscale", "4:1", "--port", "1"]) == 2
    assert "--autoscale takes MIN:MAX" in capsys.readouterr().err


def test_engine_options_pass_the_model_settings_through() -> None:
    """``rerank-run`` and ``eval`` take ``--num-input-docs`` and ``--query-weight``; left out, the workers' model uses
    its own (stored) settings, given, they reach the model the workers load."""
    from e2rank_core.cli import build_parser
    from e2rank_core.model_config import read_stored_settings
    from e2rank_core.resolve import resolve_model
    from e2rank_core.scale import EngineOptions
    from e2rank_core.scale.cli import engine_options

    parser = build_parser()
    rerank_run = ["rerank-run", "--data", "d", "--run", "r", "--output", "o"]
    for argv in (rerank_run, ["eval", "--data", "d"]):
        options = engine_options(parser.parse_args(argv))
        assert (options.num_input_docs, options.query_weight) == (None, None)
        options = engine_options(parser.parse_args([*argv, "--num-input-docs", "3", "--query-weight", "0"]))
        assert (options.num_input_docs, options.query_weight) == (3, 0.0)
    for bad in ({"query_weight": -1.0}, {"query_weight": float("nan")}, {"num_input_docs": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            EngineOptions(**bad)  # type: ignore[arg-type]
    stored = read_stored_settings(resolve_model(EngineOptions().model_name()).path)
    model = EngineOptions(device="cpu").load_model()
    assert (model.num_input_docs, model.query_weight) == (stored.num_input_docs, stored.query_weight)
    given = EngineOptions(device="cpu", num_input_docs=3, query_weight=0.5).load_model()
    assert (given.num_input_docs, given.query_weight) == (3, 0.5)
