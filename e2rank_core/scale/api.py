"""Engine dispatch for ``embed`` and ``rerank-run`` (and ``e2rank eval --engine ray``)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from .common import EngineOptions, Kind

Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def embed(
    data: str | Path,
    output: str | Path,
    *,
    kind: Kind = "document",
    engine: Engine = "local",
    options: EngineOptions | None = None,
) -> int:
    """Embed a BEIR ``corpus.jsonl`` (or ``queries.jsonl`` with ``kind="query"``, or any JSONL with ``_id`` and
    ``text``) into a Parquet file of ``id`` and ``vector`` rows, in input order. Returns the number of rows.

    Example::

        from e2rank_core.scale import EngineOptions, embed

        embed("../shared/data/scifact", "scifact.parquet", engine="ray", options=EngineOptions(workers=2))
    """
    _check_engine(engine)
    if kind not in ("document", "query"):
        raise ValueError(f"kind must be 'document' or 'query', got {kind!r}")
    options = options or EngineOptions()
    if engine == "ray":
        from .ray_engine import embed_ray

        return embed_ray(data, output, kind, options)
    from .local import embed_local

    return embed_local(data, output, kind, options)


def rerank_run(
    data: str | Path,
    run: str | Path,
    output: str | Path,
    *,
    depth: int | None = 100,
    embeddings: str | Path | None = None,
    engine: Engine = "local",
    options: EngineOptions | None = None,
) -> int:
    """Rerank the top ``depth`` candidates of every query of a first-stage TREC ``run`` over the BEIR folder
    ``data``; writes a TREC run (best first, cosine scores) in the run's query order. Returns the queries written.

    With ``embeddings`` (a Parquet file from :func:`embed`), stored document vectors are reused: each query costs
    one forward pass (its listwise prompt); documents missing from the file are encoded.

    Example::

        from e2rank_core.scale import rerank_run

        rerank_run("../shared/data/trec-dl-2019", "../shared/data/trec-dl-2019/bm25_top100.trec", "dl19.trec",
                   depth=100, embeddings="dl19.parquet")
    """
    _check_engine(engine)
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    options = options or EngineOptions()
    if engine == "ray":
        from .ray_engine import rerank_run_ray

        return rerank_run_ray(data, run, output, depth=depth, embeddings=embeddings, options=options)
    from .local import rerank_run_local

    return rerank_run_local(data, run, output, depth=depth, embeddings=embeddings, options=options)


def rerank_candidates(
    data: str | Path,
    candidates: Mapping[str, Sequence[str]],
    *,
    engine: Engine = "ray",
    options: EngineOptions | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """Rerank in-memory candidate lists (query id → doc ids, first-stage order) through an engine; returns query id
    → ``[(doc id, score)]`` best first. ``e2rank eval --engine ray`` routes its listwise rerank through this.
    """
    with tempfile.TemporaryDirectory(prefix="e2rank-scale-") as folder:
        run_path, out_path = Path(folder) / "candidates.trec", Path(folder) / "reranked.trec"
        with run_path.open("w", encoding="utf-8") as handle:
            for qid, docs in candidates.items():
                for rank, doc in enumerate(docs, start=1):
                    handle.write(f"{qid} Q0 {doc} {rank} {-float(rank)} candidates\n")
        rerank_run(data, run_path, out_path, depth=None, engine=engine, options=options)
        ranking: dict[str, list[tuple[str, float]]] = {}
        with out_path.open(encoding="utf-8") as handle:
            for line in handle:
                qid, _, doc, _, score, _ = line.split()
                ranking.setdefault(qid, []).append((doc, float(score)))
    return ranking
