"""The local engine: one process, streaming input and output, the same per-batch functions as the Ray engine.

Example::

    from e2rank_core.scale import EngineOptions
    from e2rank_core.scale.local import embed_local, rerank_run_local

    options = EngineOptions(batch_size=32)
    embed_local("../shared/data/trec-dl-2019/corpus.jsonl", "dl19.parquet", "document", options)
    rerank_run_local("../shared/data/trec-dl-2019", "../shared/data/trec-dl-2019/bm25_top100.trec", "dl19.trec",
                     depth=100, embeddings="dl19.parquet", options=options)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    EngineOptions,
    Kind,
    build_tasks,
    embed_texts,
    embeddings_table,
    input_file,
    iter_jsonl_records,
    query_offsets,
    read_run_range,
    rerank_tasks,
    split_ranges,
)

logger = logging.getLogger("e2rank")


def _progress(iterable: Any, enabled: bool, desc: str, unit: str, total: int | None = None) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, total=total)


def _chunks(records: Iterator[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    while chunk := list(islice(records, size)):
        yield chunk


def embed_local(data: str | Path, output: str | Path, kind: Kind, options: EngineOptions) -> int:
    """Embed every record of ``data`` into the Parquet file ``output`` (``id``, ``vector``); returns the count."""
    import pyarrow.parquet as pq

    source = input_file(data, kind)
    model = options.load_model()
    writer: pq.ParquetWriter | None = None
    count = 0
    try:
        batches = _chunks(iter_jsonl_records(source, kind), options.batch_size)
        for chunk in _progress(batches, options.progress, f"e2rank embed ({kind}s)", "batch"):
            vectors = embed_texts(model, [text for _, text in chunk], kind, options.batch_size)
            table = embeddings_table([record_id for record_id, _ in chunk], vectors)
            if writer is None:
                writer = pq.ParquetWriter(str(output), table.schema)
            writer.write_table(table)
            count += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # an empty input still gets a (valid, empty) file
        pq.write_table(embeddings_table([], np.zeros((0, model.dimension), dtype=np.float32)), str(output))
    return count


class VectorLookup:
    """Stored vectors by id, from an ``embed`` Parquet file or table (``id``, ``vector``)."""

    def __init__(self, table: Any, dimension: int, source: str) -> None:
        if "id" not in table.column_names or "vector" not in table.column_names:
            raise ValueError(f"{source} is not an e2rank embeddings file: it needs the columns 'id' and 'vector'")
        ids = [str(i) for i in table.column("id").to_pylist()]
        column = table.column("vector").combine_chunks()
        width = getattr(column.type, "list_size", None)
        flat = np.asarray(column.flatten(), dtype=np.float32)
        if width is None:  # a variable-size list column: every row must still have one width
            width = len(flat) // max(len(ids), 1)
        if len(ids) and (width * len(ids) != len(flat)):
            raise ValueError(f"{source}: vectors of unequal length")
        if len(ids) and width != dimension:
            raise ValueError(
                f"{source} holds {width}-dimensional vectors but the model produces {dimension}: "
                "they come from another model"
            )
        self.matrix = flat.reshape(len(ids), dimension)
        self.row = {record_id: i for i, record_id in enumerate(ids)}

    @classmethod
    def from_parquet(cls, path: str | Path, dimension: int) -> VectorLookup:
        import pyarrow.parquet as pq

        return cls(pq.read_table(str(path), columns=["id", "vector"]), dimension, str(path))

    def __call__(self, ids: list[str]) -> list[np.ndarray | None]:
        return [None if (row := self.row.get(i)) is None else self.matrix[row] for i in ids]


def rerank_run_local(
    data: str | Path,
    run: str | Path,
    output: str | Path,
    *,
    depth: int | None,
    embeddings: str | Path | None,
    options: EngineOptions,
) -> int:
    """Rerank a first-stage TREC run query by query, writing ``output`` as it goes; returns the queries written."""
    offsets = query_offsets(run)  # checks the run before the model loads
    queries = dict(iter_jsonl_records(input_file(data, "query"), "query"))
    corpus = dict(iter_jsonl_records(input_file(data, "document"), "document"))
    model = options.load_model()
    vectors = None if embeddings is None else VectorLookup.from_parquet(embeddings, model.dimension)
    ranges = split_ranges(offsets, options.batch_size)
    written = skipped = 0
    with open(output, "w", encoding="utf-8") as handle:
        for start, end in _progress(ranges, options.progress, "e2rank rerank-run", "batch"):
            tasks, missing = build_tasks(
                read_run_range(run, start, end, depth), queries, lambda ids: [corpus.get(i) for i in ids], vectors
            )
            handle.write(rerank_tasks(model, tasks, options.num_input_docs, options.batch_size))
            written += sum(1 for t in tasks if t.doc_ids)
            skipped += missing
    if skipped:
        logger.warning("e2rank rerank-run: %d queries of the run are not in the queries file; skipped", skipped)
    return written
