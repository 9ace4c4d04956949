"""What both engines share: options, record checks, run-file ranges, the per-batch model calls and the writers.

The local engine and the Ray engine differ only in *where* these functions run; the outputs are written by
:func:`embeddings_table` (Parquet ``id``, ``vector``) and :func:`trec_lines` (TREC run lines) in both.

Example::

    from e2rank_core.scale.common import query_offsets, read_run_range, split_ranges

    run = "../shared/data/trec-dl-2019/bm25_top100.trec"
    ranges = split_ranges(query_offsets(run), queries_per_range=10)
    print(read_run_range(run, *ranges[0], depth=5)[0])  # (qid, doc ids, first-stage scores)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..rocchio import check_optional_query_weight

if TYPE_CHECKING:
    import pyarrow as pa

    from ..model import E2RankModel

Kind = Literal["document", "query"]
#: The ``tag`` column of the TREC runs ``rerank-run`` writes.
RUN_TAG = "e2rank"


class ScaleError(RuntimeError):
    """A scale-out job cannot run or failed (missing extra, unreachable cluster, bad input); the message says why."""


class BadRecordError(ScaleError):
    """One input record is unusable; the message names the file and the record."""

    def __init__(self, path: str, record: str, problem: str) -> None:
        super().__init__(f"bad record in {path}: {record}: {problem}")
        self.path, self.record, self.problem = path, record, problem

    def __reduce__(self) -> tuple[Any, ...]:  # raised inside Ray workers: must survive pickling
        return (BadRecordError, (self.path, self.record, self.problem))


@dataclass(frozen=True)
class EngineOptions:
    """Model settings and, for the Ray engine, where and how wide to run.

    Example::

        EngineOptions(model="e2rank/minilm-l6-e2rank", batch_size=32, workers=4, gpus_per_worker=1)

    ``workers`` is the number of model actors (each loads the model once); ``gpus_per_worker`` may be a fraction
    (several actors share a GPU); ``ray_address`` is ``None`` (a running cluster from ``RAY_ADDRESS``, else a new
    local one), ``"auto"`` or ``"ray://host:10001"``. ``num_input_docs`` and ``query_weight`` are passed to the
    model (``None``: the model's own, i.e. what its ``e2rank_config.json`` stores, else 20 and 0).
    """

    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    num_input_docs: int | None = None
    batch_size: int = 32
    plain_queries: bool | None = None
    workers: int = 1
    gpus_per_worker: float = 0.0
    ray_address: str | None = None
    progress: bool = True
    query_weight: float | None = None

    def __post_init__(self) -> None:
        for name in ("num_input_docs", "batch_size", "workers"):
            value = getattr(self, name)
            if name == "num_input_docs" and value is None:
                continue  # the model's own (stored) value
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        object.__setattr__(self, "query_weight", check_optional_query_weight(self.query_weight))
        if not isinstance(self.gpus_per_worker, int | float) or self.gpus_per_worker < 0:
            raise ValueError(f"gpus_per_worker must be a number >= 0, got {self.gpus_per_worker!r}")

    def model_name(self) -> str:
        from ..resolve import default_model

        return self.model or default_model()

    def load_model(self) -> E2RankModel:
        """The model these options describe: one per process (``shared_model``), so one per Ray actor."""
        from ..model import shared_model

        return shared_model(
            self.model_name(),
            device=self.device,
            dtype=self.dtype,
            num_input_docs=self.num_input_docs,
            query_weight=self.query_weight,
            batch_size=self.batch_size,
            plain_queries=self.plain_queries,
            show_progress_bar=False,
        )


# ------------------------------------------------------------------------------------------------ records
def record_text(record: Mapping[str, Any], kind: Kind, path: str, where: str | None = None) -> tuple[str, str]:
    """``(id, text)`` of one corpus or query record, or :class:`BadRecordError` naming the file and the record.

    Documents are ``title`` and ``text`` joined by a space (the BEIR convention), queries their ``text``. The id is
    ``_id`` (BEIR), else ``id``.
    """
    raw_id = record.get("_id", record.get("id"))
    label = where or "a record"
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id) == "":
        raise BadRecordError(path, label, "no '_id' (string or integer)")
    record_id = str(raw_id)
    label = f"record _id={record_id!r}" + (f" ({where})" if where else "")
    text, title = record.get("text"), record.get("title")
    if not isinstance(text, str):
        raise BadRecordError(path, label, f"'text' must be a string, got {_type_name(text)}")
    if kind == "query":
        if not text.strip():
            raise BadRecordError(path, label, "empty query 'text'")
        return record_id, text
    if title is not None and not isinstance(title, str):
        raise BadRecordError(path, label, f"'title' must be a string, got {_type_name(title)}")
    content = " ".join(part for part in ((title or "").strip(), text.strip()) if part)
    return record_id, content


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def iter_jsonl_records(path: str | Path, kind: Kind) -> Iterator[tuple[str, str]]:
    """Stream ``(id, text)`` from a JSONL file, one line at a time (the local engine's reader)."""
    name = str(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadRecordError(name, f"line {number}", f"not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise BadRecordError(name, f"line {number}", "not a JSON object")
            yield record_text(record, kind, name, f"line {number}")


def input_file(data: str | Path, kind: Kind) -> Path:
    """The JSONL file behind ``--data``: the file itself, or a BEIR folder's ``corpus.jsonl`` / ``queries.jsonl``."""
    path = Path(data)
    if path.is_dir():
        path = path / ("corpus.jsonl" if kind == "document" else "queries.jsonl")
    if not path.is_file():
        raise FileNotFoundError(f"no such input file: {path}")
    return path


# ------------------------------------------------------------------------------------------------ writers
def embeddings_table(ids: Sequence[str], vectors: np.ndarray) -> pa.Table:
    """The Parquet rows ``embed`` writes: ``id`` (string) and ``vector`` (fixed-size list of float32)."""
    import pyarrow as pa

    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise ValueError(f"{len(ids)} ids for vectors of shape {matrix.shape}")
    values = pa.array(matrix.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, matrix.shape[1])
    return pa.table({"id": pa.array([str(i) for i in ids], type=pa.string()), "vector": column})


def trec_lines(qid: str, ranked: Iterable[tuple[str, float]], tag: str = RUN_TAG) -> str:
    """TREC run lines (``qid Q0 doc rank score tag``, best first) for one query; scores with 8 decimals."""
    return "".join(f"{qid} Q0 {doc} {rank} {score:.8f} {tag}\n" for rank, (doc, score) in enumerate(ranked, start=1))


# ------------------------------------------------------------------------------------------------ run files
def query_offsets(run_path: str | Path) -> list[int]:
    """Byte offsets where each query of a TREC run starts, plus the end of the file (one int per query).

    Reads the file once, checking that every query's lines are consecutive (as TREC runs are written), so workers
    can later read whole queries from byte ranges themselves.
    """
    path = Path(run_path)
    if not path.is_file():
        raise FileNotFoundError(f"no such run file: {path}")
    offsets: list[int] = []
    seen: set[str] = set()
    current: str | None = None
    offset = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if len(parts) >= 6:
                qid = parts[0].decode("utf-8", "replace")
                if qid != current:
                    if qid in seen:
                        raise ScaleError(
                            f"{path}: the lines of query {qid!r} are not consecutive (again at line {number}); "
                            f"sort the run by query first, e.g. sort -s -k1,1 {path.name}"
                        )
                    seen.add(qid)
                    offsets.append(offset)
                    current = qid
            elif line.strip():
                raise ScaleError(f"{path}: line {number} is not a TREC run line (qid Q0 doc rank score tag)")
            offset += len(line)
    offsets.append(offset)
    return offsets


def split_ranges(offsets: Sequence[int], queries_per_range: int) -> list[tuple[int, int]]:
    """Group the query offsets of :func:`query_offsets` into byte ranges of ``queries_per_range`` whole queries."""
    if queries_per_range < 1:
        raise ValueError(f"queries_per_range must be >= 1, got {queries_per_range}")
    n = len(offsets) - 1
    return [(offsets[i], offsets[min(i + queries_per_range, n)]) for i in range(0, n, queries_per_range)]


def read_run_range(
    run_path: str | Path, start: int, end: int, depth: int | None
) -> list[tuple[str, list[str], list[float]]]:
    """The queries in one byte range: ``(qid, doc ids, first-stage scores)``, best first, cut to ``depth``.

    Order within a query follows :func:`e2rank_core.evaluation.data.read_run`: rank column, then score.
    """
    with open(run_path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start).decode("utf-8")
    groups: dict[str, list[tuple[int, float, str]]] = {}
    for line in data.splitlines():
        parts = line.split()
        if len(parts) >= 6:
            groups.setdefault(parts[0], []).append((int(parts[3]), -float(parts[4]), parts[2]))
    out = []
    for qid, items in groups.items():
        best = sorted(items)[:depth]
        out.append((qid, [doc for *_, doc in best], [-negated for _, negated, _ in best]))
    return out


# ------------------------------------------------------------------------------------------------ model calls
def embed_texts(model: E2RankModel, texts: list[str], kind: Kind, batch_size: int) -> np.ndarray:
    """Embed one batch of records: documents as for indexing, queries in the model's retrieval format."""
    if kind == "document":
        return model.embed_documents(texts, batch_size=batch_size)
    return model.embed_queries(texts, batch_size=batch_size)


@dataclass
class QueryTask:
    """One query to rerank: its candidates (first-stage order), their texts and stored vectors (or ``None``)."""

    qid: str
    query: str
    doc_ids: list[str]
    texts: list[str]
    vectors: list[np.ndarray | None] | None = None


def rerank_tasks(model: E2RankModel, tasks: Sequence[QueryTask], num_input_docs: int | None, batch_size: int) -> str:
    """Rerank a batch of queries (shared forward passes) and return their TREC lines, in task order.

    Stored vectors are passed as ``document_embeddings`` (reused, not re-encoded); a candidate without one is
    encoded. The prompt holds the first ``num_input_docs`` candidates in first-stage order (``None``: the model's
    ``num_input_docs``).
    """
    tasks = [t for t in tasks if t.doc_ids]
    if not tasks:
        return ""
    results = model.rerank_batch(
        [t.query for t in tasks],
        [t.texts for t in tasks],
        document_embeddings=[t.vectors for t in tasks],
        num_input_docs=num_input_docs,
        batch_size=batch_size,
    )
    return "".join(
        trec_lines(t.qid, [(t.doc_ids[hit.index], hit.score) for hit in hits])
        for t, hits in zip(tasks, results, strict=True)
    )


def build_tasks(
    queries: Iterable[tuple[str, list[str], list[float]]],
    query_text: Mapping[str, str],
    doc_text: Any,
    doc_vector: Any | None,
) -> tuple[list[QueryTask], int]:
    """Turn run groups into :class:`QueryTask` s; candidates missing from the corpus are dropped (as ``e2rank eval``
    does), queries missing from the queries file are skipped. Returns the tasks and how many queries were skipped.

    ``doc_text(ids) -> list[str | None]`` and ``doc_vector(ids) -> list[np.ndarray | None]`` look candidates up.
    """
    tasks: list[QueryTask] = []
    skipped = 0
    for qid, doc_ids, _scores in queries:
        query = query_text.get(qid)
        if query is None:
            skipped += 1
            continue
        texts = doc_text(doc_ids)
        keep = [i for i, text in enumerate(texts) if text is not None]
        ids = [doc_ids[i] for i in keep]
        vectors = None
        if doc_vector is not None and ids:
            found = doc_vector(ids)
            vectors = found if any(v is not None for v in found) else None
        tasks.append(QueryTask(qid, query, ids, [texts[i] for i in keep], vectors))
    return tasks, skipped
