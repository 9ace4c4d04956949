"""End-to-end search (``e2rank index`` / ``e2rank search``) on a real embedded Qdrant store and the bundled model.

The collection is a slice of SciFact from ../shared/data: the abstracts judged relevant for the first 10 test
claims plus other abstracts (80 documents in all), indexed once per session into a temporary store.
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MINILM_ID, require_data

from e2rank_core import default_model, shared_model
from e2rank_core.cli import main
from e2rank_core.evaluation.data import document_text, read_qrels, read_run
from e2rank_core.search import (
    CollectionNotFoundError,
    Document,
    ModelMismatchError,
    index,
    open_store,
    read_source,
    search,
    search_batch,
    split_passages,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DOCS = ROOT / "examples" / "search" / "docs"
N_QUERIES = 10
N_DOCS = 80


def encoded_texts(model) -> int:
    """Sequences through the model's forward pass so far (the core's counter)."""
    return model.encoded_texts


@pytest.fixture(scope="module")
def model():
    return shared_model(default_model())


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An 80-document SciFact slice as a BEIR folder in a temp dir, with its 10 claims and their qrels."""
    folder = require_data("scifact")
    qrels = read_qrels(folder / "qrels" / "test.tsv")
    query_ids = sorted(qrels, key=int)[:N_QUERIES]
    relevant = {d for q in query_ids for d in qrels[q]}
    records = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
    chosen = [r for r in records if r["_id"] in relevant]
    chosen += [r for r in records if r["_id"] not in relevant][: N_DOCS - len(chosen)]
    queries = {
        r["_id"]: r["text"]
        for r in map(json.loads, (folder / "queries.jsonl").open(encoding="utf-8"))
        if r["_id"] in query_ids
    }
    out = tmp_path_factory.mktemp("scifact-slice")
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in chosen)
    with (out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    return {"folder": out, "records": chosen, "queries": queries, "qrels": {q: qrels[q] for q in query_ids}}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory, model, scifact) -> Path:
    path = tmp_path_factory.mktemp("store")
    report = index(path, "scifact", scifact["folder"], model=model)
    assert (report.documents, report.embedded, report.points) == (N_DOCS, N_DOCS, N_DOCS)
    return path


def test_search_finds_relevant_abstracts_and_reranks(store_path: Path, model, scifact) -> None:
    qid = next(iter(scifact["queries"]))
    hits = search(store_path, "scifact", scifact["queries"][qid], model=model, top_k=10, candidates=50)
    assert [h.rank for h in hits] == list(range(1, 11))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert set(scifact["qrels"][qid]) & {h.id for h in hits}
    first = hits[0]
    stored = next(r for r in scifact["records"] if r["_id"] == first.id)
    assert (first.text, first.title) == (stored["text"], stored["title"])
    # The rerank changed the scores (listwise prompt cosine, not the retrieval cosine).
    assert any(abs(h.score - h.retrieval_score) > 1e-3 for h in hits)
    plain = search(store_path, "scifact", scifact["queries"][qid], model=model, top_k=10, rerank=False)
    assert [h.score for h in plain] == [h.retrieval_score for h in plain]
    assert all(a.score >= b.score for a, b in itertools.pairwise(plain))


def test_rerank_reuses_stored_vectors(store_path: Path, model, scifact) -> None:
    """The rerank encodes no document: one query and one prompt sequence per query, nothing else."""
    query = "Vitamin D supplements lower the risk of bone fractures in elderly patients."  # not embedded before
    before = encoded_texts(model)
    hits = search(store_path, "scifact", query, model=model, top_k=50, candidates=50)
    assert encoded_texts(model) - before == 2  # the query + the listwise prompt
    assert len(hits) == 50

    # Same result as reranking the same candidates with freshly encoded documents (vectors round-trip Qdrant).
    by_id = {r["_id"]: document_text(r) for r in scifact["records"]}
    order = search(store_path, "scifact", query, model=model, top_k=50, rerank=False)  # the first-stage order
    fresh = model.rerank(query, [by_id[h.id] for h in order])  # documents encoded by the model (or its cache)
    np.testing.assert_allclose([h.score for h in hits], [r.score for r in fresh], atol=1e-4)
    assert [h.id for h in hits][:10] == [order[r.index].id for r in fresh][:10]

    queries = ["Smoking raises the risk of lung cancer.", "Aspirin prevents heart attacks.", "Sleep helps memory."]
    before = encoded_texts(model)
    runs = search_batch(store_path, "scifact", queries, model=model, top_k=5, candidates=40)
    assert encoded_texts(model) - before == 2 * len(queries)
    assert [len(r) for r in runs] == [5, 5, 5]
    before = encoded_texts(model)
    search_batch(store_path, "scifact", [q + " Really." for q in queries], model=model, rerank=False)
    assert encoded_texts(model) - before == len(queries)  # no rerank: the queries only


def test_reindex_is_idempotent(store_path: Path, model, scifact, tmp_path: Path) -> None:
    before = encoded_texts(model)
    report = index(store_path, "scifact", scifact["folder"], model=model)
    assert (report.embedded, report.unchanged, report.points) == (0, N_DOCS, N_DOCS)
    assert encoded_texts(model) == before  # unchanged documents are not embedded again

    # One changed document: re-embedded and replaced in place (same point id), no duplicate.
    records = [dict(r) for r in scifact["records"]]
    records[5]["text"] = "Honeybees find flowers by colour and scent, and dance to tell the hive where they are."
    changed = tmp_path / "corpus.jsonl"
    changed.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = index(store_path, "scifact", changed, model=model)
    assert (report.embedded, report.points) == (1, N_DOCS)
    hit = search(store_path, "scifact", "how do honeybees find flowers", model=model, top_k=1, rerank=False)[0]
    assert hit.id == records[5]["_id"] and hit.text.startswith("Honeybees")
    index(store_path, "scifact", scifact["folder"], model=model)  # put the original text back
    with open_store(path=store_path) as store:
        assert store.count("scifact") == N_DOCS
        assert store.fetch("scifact", [records[5]["_id"]])[0].document.text == scifact["records"][5]["text"]


def test_batch_search_writes_a_trec_run(store_path: Path, scifact, tmp_path: Path, capsys) -> None:
    import ir_measures

    run_path = tmp_path / "run.trec"
    argv = ["search", "--queries", str(scifact["folder"] / "queries.jsonl"), "--output", str(run_path)]
    assert main([*argv, "--collection", "scifact", "--store", str(store_path), "--top-k", "20", "--quiet"]) == 0
    assert "10 queries" in capsys.readouterr().out
    run = read_run(run_path)
    assert set(run) == set(scifact["queries"]) and all(len(docs) == 20 for docs in run.values())
    lines = run_path.read_text(encoding="utf-8").splitlines()
    assert all(line.split()[1] == "Q0" and line.split()[5] == "e2rank" for line in lines)
    qrels = [ir_measures.Qrel(q, d, g) for q, judged in scifact["qrels"].items() for d, g in judged.items()]
    measures = ir_measures.calc_aggregate(
        [ir_measures.nDCG @ 10, ir_measures.R @ 20], qrels, ir_measures.read_trec_run(str(run_path))
    )
    # 80 documents, 10 claims: the bundled model ranks most cited abstracts at the top.
    assert measures[ir_measures.nDCG @ 10] > 0.6 and measures[ir_measures.R @ 20] > 0.8


def test_wrong_model_is_a_clear_error(store_path: Path, model, capsys) -> None:
    other = shared_model(MINILM_ID)
    with pytest.raises(ModelMismatchError, match=r"indexed with model 'e2rank/minilm-l6-e2rank'"):
        search(store_path, "scifact", "a claim", model=other)
    with pytest.raises(ModelMismatchError):
        index(store_path, "scifact", [Document("x", "text")], model=other)
    argv = ["search", "a claim", "--collection", "scifact", "--store", str(store_path), "--model", MINILM_ID]
    assert main(argv) == 2
    assert "indexed with model 'e2rank/minilm-l6-e2rank'" in capsys.readouterr().err
    with open_store(path=store_path) as store:
        assert store.count("scifact") == N_DOCS  # nothing was written by the refused index


def test_missing_collection_and_bad_input(store_path: Path, model, tmp_path: Path, capsys) -> None:
    with pytest.raises(CollectionNotFoundError, match=r"'nope' does not exist .*collections there: scifact"):
        search(store_path, "nope", "query", model=model)
    assert main(["search", "query", "--collection", "nope", "--store", str(store_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="empty"):
        search(store_path, "scifact", "  ", model=model)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no \.txt or \.md file"):
        read_source(empty)
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "image.txt").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        read_source(binary)
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    with pytest.raises(ValueError, match="is not a source"):
        read_source(pdf)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"title": "no text"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2 has no string 'text'"):
        read_source(bad)
    assert main(["index", str(empty), "--collection", "empty", "--store", str(tmp_path / "s")]) == 2
    assert "no .txt or .md file" in capsys.readouterr().err
    with open_store(path=tmp_path / "s") as store:
        assert store.collections() == []  # the refused source created nothing

    with open_store(path=store_path), pytest.raises(ValueError, match="already accessed"):
        open_store(path=store_path)  # one embedded client per folder at a time

    # A server URL where nothing listens (a free loopback port): a clear connection error, exit code 2 in the CLI.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(ConnectionError, match="cannot reach the Qdrant server"):
        open_store(url=url)
    assert main(["search", "query", "--collection", "scifact", "--qdrant-url", url]) == 2
    assert "cannot reach the Qdrant server" in capsys.readouterr().err


def test_folder_source_and_passage_splitter(model, tmp_path: Path) -> None:
    docs = read_source(EXAMPLE_DOCS)
    assert len(docs) == 12 and docs[0].id == "bees.md" and docs[0].metadata == {"path": "bees.md"}
    assert split_passages("one two\n\nthree\n\nfour five six seven", 3) == [
        "one two\n\nthree",
        "four five six",
        "seven",
    ]
    passages = read_source(EXAMPLE_DOCS, passage_words=40)
    bees = [d for d in passages if d.metadata["path"] == "bees.md"]
    assert [d.id for d in bees] == ["bees.md#0", "bees.md#1", "bees.md#2"]
    assert all(len(d.text.split()) <= 40 for d in passages)
    assert " ".join(" ".join(d.text.split()) for d in bees) == " ".join(docs[0].text.split())

    report = index(tmp_path / "store", "passages", EXAMPLE_DOCS, model=model, passage_words=40)
    assert report.points == len(passages)
    hits = search(tmp_path / "store", "passages", "what does the waggle dance tell other bees?", model=model, top_k=3)
    assert hits[0].id.startswith("bees.md#")


def test_cli_index_then_search(tmp_path: Path, capsys) -> None:
    store = str(tmp_path / "demo")
    assert main(["index", str(EXAMPLE_DOCS), "--collection", "demo", "--store", store, "--quiet"]) == 0
    assert "12 embedded" in capsys.readouterr().out
    assert main(["index", str(EXAMPLE_DOCS), "--collection", "demo", "--store", store, "--quiet"]) == 0
    assert "0 embedded, 12 unchanged, 12 in the collection" in capsys.readouterr().out

    assert main(["search", "how do bees find flowers?", "--collection", "demo", "--store", store, "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "bees.md" in lines[0]

    argv = ["search", "why is the sea higher twice a day", "-c", "demo", "--store", store, "--jsonl", "--top-k", "2"]
    assert main([*argv, "--no-rerank"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["id"] == "tides.txt"
    assert rows[0]["score"] == rows[0]["retrieval_score"]
    assert main(["search", "-c", "demo", "--store", store]) == 2  # neither a query nor --queries
    assert "give a QUERY or --queries" in capsys.readouterr().err


def test_search_is_a_lazy_import() -> None:
    code = (
        "import sys; import e2rank_core; from e2rank_core.cli import build_parser; build_parser(); "
        "assert 'qdrant_client' not in sys.modules, 'qdrant_client imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
