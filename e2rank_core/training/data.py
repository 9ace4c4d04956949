"""Training lists in the official ``train.jsonl`` format, built from a BEIR folder, a first stage and qrels."""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..evaluation.data import bm25_run, load_beir, read_run

if TYPE_CHECKING:
    from ..model import E2RankModel


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


def teacher_ranking(grades: Sequence[float], tie_scores: Sequence[float] | None = None) -> list[int]:
    """Relevance grade first; ties broken by ``tie_scores`` (higher first) if given, else by first-stage order.

    Returns the 1-based permutation, best first.
    """
    if tie_scores is None:
        order = sorted(range(len(grades)), key=lambda i: (-grades[i], i))
    else:
        order = sorted(range(len(grades)), key=lambda i: (-grades[i], -tie_scores[i], i))
    return [i + 1 for i in order]


def teacher_cosine_scores(
    teacher: E2RankModel, query_ids: Sequence[str], pairs: Sequence[tuple[str, Sequence[str]]], corpus: dict[str, str]
) -> dict[str, dict[str, float]]:
    """Cosine of each (query text, document ids) pair under ``teacher``, as query id -> doc id -> score.

    The teacher embeds queries with its own settings (e.g. ``plain_queries=True`` for a model trained without
    instructions) and each distinct document once.
    """
    doc_ids = sorted({d for _, docs in pairs for d in docs})
    doc_vectors = teacher.embed_documents([corpus[d] for d in doc_ids])
    row_of = {d: i for i, d in enumerate(doc_ids)}
    query_vectors = teacher.embed_queries([text for text, _ in pairs])
    scores: dict[str, dict[str, float]] = {}
    for qid, (_, docs), vector in zip(query_ids, pairs, query_vectors, strict=True):
        values = doc_vectors[[row_of[d] for d in docs]] @ vector
        scores.setdefault(qid, {}).update(zip(docs, values.tolist(), strict=True))
    return scores


def build_lists(
    data_dir: str | Path,
    *,
    split: str | None = "train",
    run_file: str | Path | None = None,
    depth: int = 100,
    list_size: int = 16,
    lists_per_query: int = 1,
    max_positives: int = 4,
    seed: int = 0,
    source: str | None = None,
    teacher: E2RankModel | None = None,
    exclude_queries: Collection[str] = (),
) -> list[TrainingList]:
    """Lists of ``list_size`` documents per query of ``split``.

    With judgments (``split`` names a qrels file), each list holds up to ``max_positives`` judged-relevant
    documents (grade > 0, highest grades first in the first list, a seeded random choice in the others; relevant
    documents the first stage missed are added), and negatives from the first stage: the top-ranked ones in the
    first list, a seeded random choice among the top ``depth`` in the others. Unjudged candidates count as grade 0.
    The teacher orders by grade; ties (most pairs: the negatives among themselves) are broken by ``teacher``'s
    cosine if given, else by first-stage rank.

    Without judgments (``split=None``, e.g. TREC DL 2022) ``teacher`` is required and ranks the whole list: the
    first list is the first-stage top ``list_size``, the others a seeded random choice among the top ``depth``.

    Query ids in ``exclude_queries`` (a held-out dev split) get no list.

    Documents keep first-stage order inside each list (missed positives go last, where a first stage would have
    put them), as candidates arrive at inference.
    """
    if split is None and teacher is None:
        raise ValueError("an unlabeled collection (split=None) needs a teacher model to rank its lists")
    collection = load_beir(data_dir, split)
    if run_file is not None or collection.run_path is not None:
        candidates = read_run(run_file or collection.run_path, depth)  # type: ignore[arg-type]
    else:
        candidates = bm25_run(collection, depth)
    rng = random.Random(seed)
    name = source or collection.name
    chosen_lists: list[tuple[str, list[str]]] = []
    excluded = set(exclude_queries)
    for qid in sorted(set(collection.queries) - excluded):
        judged = collection.qrels.get(qid, {})
        ranked = [d for d in candidates.get(qid, []) if d in collection.corpus]
        rank_of = {d: i for i, d in enumerate(ranked)}
        if split is None:
            if len(ranked) < list_size:
                continue
            for copy in range(lists_per_query):
                docs = ranked[:list_size] if copy == 0 else sorted(rng.sample(ranked, list_size), key=rank_of.get)
                chosen_lists.append((qid, docs))
            continue
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
            negatives_chosen = negatives[:needed] if copy == 0 else rng.sample(negatives, needed)
            docs = sorted(positives + negatives_chosen, key=lambda d: rank_of.get(d, len(ranked)))
            chosen_lists.append((qid, docs))
    tie_scores: dict[str, dict[str, float]] = {}
    if teacher is not None and chosen_lists:
        pairs = [(collection.queries[qid], docs) for qid, docs in chosen_lists]
        tie_scores = teacher_cosine_scores(teacher, [qid for qid, _ in chosen_lists], pairs, collection.corpus)
    lists: list[TrainingList] = []
    for qid, docs in chosen_lists:
        judged = collection.qrels.get(qid, {})
        grades = [judged.get(d, 0) for d in docs]
        ties = [tie_scores[qid][d] for d in docs] if tie_scores else None
        ranking = teacher_ranking(grades, ties)
        lists.append(TrainingList(collection.queries[qid], [collection.corpus[d] for d in docs], ranking, name))
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
