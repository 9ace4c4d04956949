"""Training lists in the official ``train.jsonl`` format, built from a BEIR folder, a first stage and qrels."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..evaluation.data import bm25_run, load_beir, read_run


@dataclass
class TrainingList:
    """One sample: a query, its documents in first-stage order, and the teacher's permutation (1-based)."""

    query: str
    document: list[str]
    ranking: list[int]
    source: str = ""

    def teacher_positions(self) -> list[int]:
        """0-based teacher rank of each document (0 = best)."""
        positions = [0] * len(self.ranking)
        for rank, doc_number in enumerate(self.ranking):
            positions[doc_number - 1] = rank
        return positions


def teacher_ranking(grades: list[int]) -> list[int]:
    """Relevance grade first, first-stage order breaking ties: the 1-based permutation, best first."""
    order = sorted(range(len(grades)), key=lambda i: (-grades[i], i))
    return [i + 1 for i in order]


def build_lists(
    data_dir: str | Path,
    *,
    split: str = "train",
    run_file: str | Path | None = None,
    depth: int = 100,
    list_size: int = 16,
    lists_per_query: int = 1,
    max_positives: int = 4,
    seed: int = 0,
    source: str | None = None,
) -> list[TrainingList]:
    """Lists of ``list_size`` documents per judged query of ``split``.

    Each list holds up to ``max_positives`` judged-relevant documents (grade > 0, highest grades first in the
    first list, a seeded random choice in the others; relevant documents the first stage missed are added), and
    negatives from the first stage: the top-ranked ones in the first list, a seeded
    random choice among the top ``depth`` in the others. Documents keep first-stage order (missed positives go
    last, where a first stage would have put them); the teacher orders by grade, then first-stage rank.
    Unjudged candidates count as grade 0.
    """
    collection = load_beir(data_dir, split)
    if run_file is not None or collection.run_path is not None:
        candidates = read_run(run_file or collection.run_path, depth)  # type: ignore[arg-type]
    else:
        candidates = bm25_run(collection, depth)
    rng = random.Random(seed)
    name = source or collection.name
    lists: list[TrainingList] = []
    for qid in sorted(collection.queries):
        judged = collection.qrels.get(qid, {})
        ranked = [d for d in candidates.get(qid, []) if d in collection.corpus]
        rank_of = {d: i for i, d in enumerate(ranked)}
        # Best grade first, then first-stage rank; relevant documents the first stage missed come last.
        relevant = sorted(
            (d for d, g in judged.items() if g > 0 and d in collection.corpus),
            key=lambda d: (-judged[d], rank_of.get(d, len(ranked)), d),
        )
        negatives = [d for d in ranked if judged.get(d, 0) <= 0]
        if not relevant or len(negatives) < list_size - 1:
            continue
        for copy in range(lists_per_query):
            positives = (
                relevant[:max_positives] if copy == 0 else rng.sample(relevant, min(max_positives, len(relevant)))
            )
            needed = list_size - len(positives)
            chosen = negatives[:needed] if copy == 0 else rng.sample(negatives, needed)
            docs = sorted(positives + chosen, key=lambda d: rank_of.get(d, len(ranked)))
            grades = [judged.get(d, 0) for d in docs]
            lists.append(
                TrainingList(
                    collection.queries[qid], [collection.corpus[d] for d in docs], teacher_ranking(grades), name
                )
            )
    return lists


def write_jsonl(lists: Iterable[TrainingList], path: str | Path) -> int:
    """Write samples as ``train.jsonl`` (``query``, ``document``, ``ranking``, ``source``); returns the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for item in lists:
            handle.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[TrainingList]:
    """Read ``train.jsonl`` (fields ``query``, ``document``, ``ranking``, optional ``source``), validating each line."""
    lists: list[TrainingList] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            docs, ranking = record.get("document"), record.get("ranking")
            if not isinstance(record.get("query"), str) or not isinstance(docs, list) or not docs:
                raise ValueError(f"{path}:{number}: needs a 'query' string and a non-empty 'document' list")
            if sorted(ranking or []) != list(range(1, len(docs) + 1)):
                raise ValueError(f"{path}:{number}: 'ranking' must be a 1-based permutation of the documents")
            lists.append(TrainingList(record["query"], docs, ranking, record.get("source", "")))
    return lists
