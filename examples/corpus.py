"""A small real corpus for the examples: SciFact claims and abstracts from ../shared/data, or the bundled capitals."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("E2RANK_DATA_DIR", HERE.parents[1] / "shared" / "data"))


@dataclass
class ExampleCorpus:
    name: str
    documents: list[dict[str, str]]  # {"id", "title", "text"}
    queries: list[tuple[str, set[str]]]  # (query text, ids of relevant documents)


def load_corpus(max_queries: int = 3, max_documents: int = 300) -> ExampleCorpus:
    """SciFact test claims with their relevant abstracts plus distractors; the capitals file when data is absent."""
    folder = DATA / "scifact"
    if not (folder / "corpus.jsonl").is_file():
        lines = (HERE / "data" / "capitals.txt").read_text(encoding="utf-8").splitlines()
        docs = [{"id": str(i), "title": "", "text": t} for i, t in enumerate(lines) if t.strip()]
        return ExampleCorpus("capitals", docs, [("What is the capital of France?", {"2"})])
    qrels: dict[str, set[str]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc_id, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(doc_id)
    texts = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open(encoding="utf-8"))}
    chosen = sorted(qrels)[:max_queries]
    wanted = set().union(*(qrels[q] for q in chosen))
    documents: list[dict[str, str]] = []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for record in map(json.loads, handle):
            if record["_id"] in wanted or len(documents) < max_documents - len(wanted):
                documents.append({"id": record["_id"], "title": record.get("title", ""), "text": record["text"]})
    return ExampleCorpus("scifact", documents, [(texts[q], qrels[q]) for q in chosen])
