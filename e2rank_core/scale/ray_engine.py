"""The Ray engine: Ray Data pipelines with one model actor per worker, streaming output through the driver.

- ``embed``: ``read_json`` → ``map_batches(_Embedder)`` (an actor pool of ``workers`` actors; the model loads once
  per actor) → the driver appends each finished batch to one Parquet file (``id``, ``vector``).
- ``rerank-run``: the driver scans the run once for query boundaries (one offset per query) and hands byte ranges
  of whole queries to ``map_batches(_Reranker)``; each actor reads its ranges itself. Corpus texts, query texts and
  stored vectors are read by Ray Data (``read_json`` / ``read_parquet``) into the object store once, and every
  actor on a node maps the same blocks (a broadcast lookup): the driver holds only object references.

Output order is the input order (``preserve_order``), and both engines format rows through
:mod:`e2rank_core.scale.common`, so a Ray run file equals the local one.

Example::

    import ray
    from e2rank_core.scale import EngineOptions
    from e2rank_core.scale.ray_engine import embed_ray

    ray.init(num_cpus=2)
    embed_ray("../shared/data/trec-dl-2019/corpus.jsonl", "dl19.parquet", "document", EngineOptions(workers=2))
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    EngineOptions,
    Kind,
    ScaleError,
    build_tasks,
    embed_texts,
    embeddings_table,
    input_file,
    query_offsets,
    read_run_range,
    record_text,
    rerank_tasks,
    split_ranges,
)

logger = logging.getLogger("e2rank")

#: CPU left free for Ray Data's read and write tasks when the model actors are placed.
_RESERVED_CPUS = 0.5
_READ_CPUS = 0.25


def import_ray() -> Any:
    """``ray`` with Ray Data, or a one-line :class:`ScaleError` saying which extra to install."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ScaleError(
            f"--engine ray needs Ray ({exc.name or exc}): install the extra with pip install 'e2rank[ray]'"
        ) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Connect to ``address`` (or reuse a running ``ray.init``), yield ``ray``; disconnect only what we connected."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        check_reachable(address or os.environ.get("RAY_ADDRESS"))
        kwargs: dict[str, Any] = {"address": address, "logging_level": logging.WARNING}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            kwargs["include_dashboard"] = False  # a new local cluster: nothing to browse
        try:
            ray.init(**kwargs)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError depending on the address form
            where = address or os.environ.get("RAY_ADDRESS") or "a new local cluster"
            raise ScaleError(f"cannot reach the Ray cluster at {where}: {_first_line(exc)}") from None
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast when ``host:port`` (or ``ray://host:port``) does not accept connections: ``ray.init`` would retry
    for minutes. ``None`` and ``auto`` are left to Ray (a new local cluster, or the one running here)."""
    if not address or address in {"auto", "local"}:
        return
    target = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ScaleError(f"--ray-address must be 'auto', 'host:port' or 'ray://host:port', got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ScaleError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _data_context(progress: bool) -> Iterator[Any]:
    """Ordered output and the progress setting, restored afterwards (the context is process-wide)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    data_logger = logging.getLogger("ray.data")
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.raise_original_map_exception)
    level = data_logger.level
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = progress
    ctx.raise_original_map_exception = True  # a worker's BadRecordError reaches the driver as itself
    if not progress:
        data_logger.setLevel(logging.WARNING)  # no "Starting execution ..." lines either
    try:
        yield ctx
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.raise_original_map_exception = saved
        data_logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def explain_failure(exc: BaseException) -> ScaleError:
    """The error to show for a failed Ray job: the worker's :class:`BadRecordError` if one is in the chain."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    texts: list[str] = []
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ScaleError) and not type(current).__name__.startswith("RayTaskError"):
            return current  # the worker's own error (Ray's wrapper prints the whole traceback as its message)
        texts.append(str(current))
        todo.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    # Ray may hand back the worker's error as text only (its traceback, wrapped): find our line in it.
    for text in texts:
        for line in text.splitlines():
            for name in ("BadRecordError: ", "ScaleError: "):
                if name in line:
                    return ScaleError(line.split(name, 1)[1].strip())
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in reversed(lines) if not line.startswith(("File ", "^", "~"))), type(exc).__name__)
    return ScaleError(f"the Ray job failed: {detail}")


def actor_resources(ray: Any, options: EngineOptions) -> tuple[float, float]:
    """``(num_cpus, num_gpus)`` per model actor, checked against the cluster so a too-wide job fails instead of
    waiting forever for actors that cannot be placed."""
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    workers = options.workers
    if options.gpus_per_worker > 0 and gpus + 1e-9 < workers * options.gpus_per_worker:
        raise ScaleError(
            f"--workers {workers} x --gpus-per-worker {options.gpus_per_worker:g} needs "
            f"{workers * options.gpus_per_worker:g} GPUs; the cluster has {gpus:g}"
        )
    per_worker = min(1.0, (cpus - _RESERVED_CPUS) / workers)
    if per_worker < 0.25:
        raise ScaleError(
            f"the cluster has {cpus:g} CPUs: too few for {workers} workers (each needs 0.25 CPU and "
            f"{_RESERVED_CPUS:g} stays free for reading); lower --workers"
        )
    return round(per_worker, 3), float(options.gpus_per_worker)


def _set_threads(num_cpus: float) -> None:
    import torch

    torch.set_num_threads(max(1, math.floor(num_cpus)))


# ------------------------------------------------------------------------------------------------ embed
class _Embedder:
    """The stateful ``map_batches`` callable: one model per actor, a batch of JSON records in, rows out."""

    def __init__(self, options: EngineOptions, kind: Kind, source: str, num_cpus: float) -> None:
        _set_threads(num_cpus)
        self.model = options.load_model()
        self.options, self.kind, self.source = options, kind, source

    def __call__(self, batch: Any) -> Any:
        ids, texts = _records(batch, self.kind, self.source)
        vectors = embed_texts(self.model, texts, self.kind, self.options.batch_size)
        return embeddings_table(ids, vectors)


def _records(batch: Any, kind: Kind, source: str) -> tuple[list[str], list[str]]:
    """Checked ``(ids, texts)`` of a pyarrow batch read by ``read_json(include_paths=True)``."""
    ids, texts = [], []
    for record in batch.to_pylist():
        record_id, text = record_text(record, kind, Path(record.get("path") or source).name)
        ids.append(record_id)
        texts.append(text)
    return ids, texts


def _read_json(ray: Any, path: Path) -> Any:
    try:
        return ray.data.read_json(str(path), include_paths=True, num_cpus=_READ_CPUS)
    except Exception as exc:  # the schema is inferred when the dataset is created
        raise explain_failure(exc) from None


def embed_ray(data: str | Path, output: str | Path, kind: Kind, options: EngineOptions) -> int:
    """Embed every record of ``data`` on Ray into the Parquet file ``output``; returns the count."""
    import pyarrow.parquet as pq

    source = input_file(data, kind)
    with ray_session(options.ray_address) as ray, _data_context(options.progress):
        num_cpus, num_gpus = actor_resources(ray, options)
        dataset = _read_json(ray, source).map_batches(
            _Embedder,
            batch_size=options.batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=options.workers),
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            fn_constructor_kwargs={"options": options, "kind": kind, "source": str(source), "num_cpus": num_cpus},
        )
        writer: pq.ParquetWriter | None = None
        count = 0
        try:
            for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                if table.num_rows == 0:
                    continue
                if writer is None:
                    writer = pq.ParquetWriter(str(output), table.schema)
                writer.write_table(table)
                count += table.num_rows
        except Exception as exc:  # Ray wraps a worker's ScaleError in a RayTaskError subclass of it: unwrap
            raise explain_failure(exc) from None
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            model_dim = options.load_model().dimension
            pq.write_table(embeddings_table([], np.zeros((0, model_dim), dtype=np.float32)), str(output))
    return count


# ------------------------------------------------------------------------------------------------ rerank-run
def _lookup_block(kind: Kind, source: str) -> Any:
    """A stateless ``map_batches`` function: JSON records → ``(id, text)`` rows, checked."""

    def to_rows(batch: Any) -> Any:
        import pyarrow as pa

        ids, texts = _records(batch, kind, source)
        return pa.table({"id": pa.array(ids, type=pa.string()), "text": pa.array(texts, type=pa.string())})

    return to_rows


class _Reranker:
    """The stateful ``map_batches`` callable for ``rerank-run``: one model per actor; rows are byte ranges of the
    run (whole queries), output rows are their TREC lines."""

    def __init__(
        self,
        options: EngineOptions,
        run: str,
        depth: int | None,
        corpus_refs: list[Any],
        query_refs: list[Any],
        vector_refs: list[Any] | None,
        vector_source: str,
        num_cpus: float,
    ) -> None:
        import pyarrow as pa
        import ray

        from .local import VectorLookup

        _set_threads(num_cpus)
        self.model = options.load_model()
        self.options, self.run, self.depth = options, run, depth
        corpus = pa.concat_tables(ray.get(corpus_refs))
        self.doc_row = {doc_id: i for i, doc_id in enumerate(corpus.column("id").to_pylist())}
        self.doc_text = corpus.column("text")
        queries = pa.concat_tables(ray.get(query_refs))
        self.queries = dict(zip(queries.column("id").to_pylist(), queries.column("text").to_pylist(), strict=True))
        self.vectors = None
        if vector_refs is not None:
            self.vectors = VectorLookup(pa.concat_tables(ray.get(vector_refs)), self.model.dimension, vector_source)

    def _texts(self, ids: list[str]) -> list[str | None]:
        rows = [self.doc_row.get(i) for i in ids]
        found = self.doc_text.take([r for r in rows if r is not None]).to_pylist()
        it = iter(found)
        return [None if r is None else next(it) for r in rows]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        lines, skipped = [], []
        for start, end in zip(batch["start"], batch["end"], strict=True):
            tasks, missing = build_tasks(
                read_run_range(self.run, int(start), int(end), self.depth), self.queries, self._texts, self.vectors
            )
            lines.append(rerank_tasks(self.model, tasks, self.options.num_input_docs, self.options.batch_size))
            skipped.append(missing)
        return {"lines": np.array(lines, dtype=object), "skipped": np.array(skipped, dtype=np.int64)}


def rerank_run_ray(
    data: str | Path,
    run: str | Path,
    output: str | Path,
    *,
    depth: int | None,
    embeddings: str | Path | None,
    options: EngineOptions,
) -> int:
    """Rerank a first-stage TREC run on Ray; writes ``output`` in the run's query order. Returns the queries written."""
    offsets = query_offsets(run)
    n_queries = len(offsets) - 1
    corpus_path, query_path = input_file(data, "document"), input_file(data, "query")
    if embeddings is not None and not Path(embeddings).exists():
        raise FileNotFoundError(f"no such embeddings file: {embeddings}")
    with ray_session(options.ray_address) as ray, _data_context(options.progress):
        num_cpus, num_gpus = actor_resources(ray, options)
        try:
            corpus_refs = (
                _read_json(ray, corpus_path)
                .map_batches(_lookup_block("document", str(corpus_path)), batch_format="pyarrow")
                .to_arrow_refs()
            )
            query_refs = (
                _read_json(ray, query_path)
                .map_batches(_lookup_block("query", str(query_path)), batch_format="pyarrow")
                .to_arrow_refs()
            )
            vector_refs = None
            if embeddings is not None:
                vector_refs = ray.data.read_parquet(str(embeddings)).select_columns(["id", "vector"]).to_arrow_refs()
        except Exception as exc:  # Ray wraps a worker's ScaleError in a RayTaskError subclass of it: unwrap
            raise explain_failure(exc) from None
        # Small ranges when there are few queries, so every worker gets some; at most one model batch each.
        per_range = max(1, min(options.batch_size, math.ceil(n_queries / (options.workers * 4))))
        ranges = split_ranges(offsets, per_range)
        if not ranges:
            Path(output).write_text("", encoding="utf-8")
            return 0
        items = [{"start": start, "end": end} for start, end in ranges]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _Reranker,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=options.workers),
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            fn_constructor_kwargs={
                "options": options,
                "run": str(Path(run).resolve()),
                "depth": depth,
                "corpus_refs": corpus_refs,
                "query_refs": query_refs,
                "vector_refs": vector_refs,
                "vector_source": str(embeddings),
                "num_cpus": num_cpus,
            },
        )
        written = skipped = 0
        try:
            with open(output, "w", encoding="utf-8") as handle:
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    for text, missing in zip(batch["lines"], batch["skipped"], strict=True):
                        handle.write(str(text))
                        written += len({line.split(" ", 1)[0] for line in str(text).splitlines()})
                        skipped += int(missing)
        except Exception as exc:  # Ray wraps a worker's ScaleError in a RayTaskError subclass of it: unwrap
            raise explain_failure(exc) from None
    if skipped:
        logger.warning("e2rank rerank-run: %d queries of the run are not in the queries file; skipped", skipped)
    return written
