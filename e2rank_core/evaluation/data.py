"""BEIR-format collections and first-stage runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BeirCollection:
    """A BEIR folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` and an optional BM25 run."""

    name: str
    corpus: dict[str, str]  # doc id -> "title text"
    queries: dict[str, str]  # query id -> text (only the split's judged queries)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)  # query id -> doc id -> grade
    run_path: Path | None = None


def document_text(record: dict[str, str]) -> str:
    """Title and text joined by a space (the BEIR convention for dense models); either may be empty."""
    return " ".join(part for part in (record.get("title", "").strip(), record.get("text", "").strip()) if part)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            parts = line.rstrip("\n").split("\t")
            if number == 0 and parts[0] == "query-id":
                continue
            if len(parts) < 3:
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def load_beir(folder: str | Path, split: str | None = "test") -> BeirCollection:
    """Load a BEIR folder; the queries kept are those of ``split`` (the ones its qrels judge).

    ``split=None`` loads every query with no judgments (an unlabeled collection such as TREC DL 2022).
    """
    folder = Path(folder)
    if not (folder / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"{folder} is not a BEIR folder: corpus.jsonl is missing")
    qrels: dict[str, dict[str, int]] = {}
    if split is not None:
        qrels_path = folder / "qrels" / f"{split}.tsv"
        if not qrels_path.is_file():
            raise FileNotFoundError(f"{folder} has no qrels/{split}.tsv")
        qrels = read_qrels(qrels_path)
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        corpus = {str(r["_id"]): document_text(r) for r in map(json.loads, handle)}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        queries = {str(r["_id"]): r["text"] for r in map(json.loads, handle) if split is None or str(r["_id"]) in qrels}
    run_path = folder / "bm25_top100.trec"
    return BeirCollection(folder.name, corpus, queries, qrels, run_path if run_path.is_file() else None)


def read_run(path: str | Path, depth: int | None = None) -> dict[str, list[str]]:
    """A TREC run as query id -> doc ids, best first (by rank column, then score)."""
    rows: dict[str, list[tuple[int, float, str]]] = {}
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 6:
                rows.setdefault(parts[0], []).append((int(parts[3]), -float(parts[4]), parts[2]))
    return {qid: [doc for *_, doc in sorted(items)][:depth] for qid, items in rows.items()}


def write_run(path: str | Path, ranking: dict[str, list[tuple[str, float]]], tag: str) -> None:
    """Write ``query id -> [(doc id, score)]`` (best first) as a TREC run file."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for qid in sorted(ranking):
            for rank, (doc_id, score) in enumerate(ranking[qid], start=1):
                handle.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def bm25_run(collection: BeirCollection, depth: int = 100) -> dict[str, list[str]]:
    """First stage with bm25s (English stop words, no stemmer): deterministic, ties broken by doc id order."""
    import bm25s

    doc_ids = list(collection.corpus)
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize([collection.corpus[d] for d in doc_ids], stopwords="en", show_progress=False),
        show_progress=False,
    )
    query_ids = list(collection.queries)
    tokens = bm25s.tokenize([collection.queries[q] for q in query_ids], stopwords="en", show_progress=False)
    k = min(depth, len(doc_ids))
    results, _scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
    return {qid: [doc_ids[i] for i in row] for qid, row in zip(query_ids, results.tolist(), strict=True)}
