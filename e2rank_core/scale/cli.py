"""``e2rank embed`` and ``e2rank rerank-run``, each with ``--engine local|ray``.

Examples::

    e2rank embed --data ../shared/data/trec-dl-2019 --output dl19.parquet --engine ray --workers 2
    e2rank rerank-run --data ../shared/data/trec-dl-2019 --run ../shared/data/trec-dl-2019/bm25_top100.trec \\
        --output dl19.reranked.trec --depth 100 --embeddings dl19.parquet --engine ray --workers 2

Ray is imported only when ``--engine ray`` runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..cli_options import add_prompt_options
from .common import ScaleError


def add_engine_options(parser: argparse.ArgumentParser, *, batch_size: bool = True) -> None:
    """``--engine``, ``--ray-address``, ``--workers``, ``--gpus-per-worker`` (and ``--batch-size``) on ``parser``."""
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--engine", choices=["local", "ray"], default="local", help="local: this process (default); ray: Ray Data"
    )
    group.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster: 'auto' (a running one), 'ray://host:10001'; default: $RAY_ADDRESS, else a new local one",
    )
    group.add_argument("--workers", type=int, default=1, help="model actors (each loads the model once; 1)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per actor, may be fractional (0)")
    if batch_size:
        group.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (32)")


def engine_options(args: argparse.Namespace, **overrides: object):  # -> EngineOptions
    """The :class:`~e2rank_core.scale.common.EngineOptions` described by parsed command-line arguments."""
    from .common import EngineOptions

    values = {
        "model": getattr(args, "model", None),
        "device": getattr(args, "device", None),
        "dtype": getattr(args, "dtype", None),
        "num_input_docs": getattr(args, "num_input_docs", None),
        "query_weight": getattr(args, "query_weight", None),
        "batch_size": getattr(args, "batch_size", 32),
        "plain_queries": getattr(args, "plain_queries", None),
        "workers": args.workers,
        "gpus_per_worker": args.gpus_per_worker,
        "ray_address": args.ray_address,
        "progress": not getattr(args, "quiet", False),
    }
    values.update(overrides)
    return EngineOptions(**values)  # type: ignore[arg-type]


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", default=None, help="model id or path (default: the offline default)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available, per worker)")
    parser.add_argument("--dtype", default=None, help="float32, float16 or bfloat16")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="embed a corpus (or queries) into a Parquet file of (id, vector)",
        description="Embed a BEIR corpus.jsonl (or any JSONL with _id and text; a BEIR folder means its corpus.jsonl) "
        "into Parquet rows (id, vector), streaming, in input order.",
    )
    embed.add_argument("--data", required=True, help="JSONL file or BEIR folder")
    embed.add_argument("--output", required=True, help="Parquet file to write")
    embed.add_argument("--kind", choices=["document", "query"], default="document", help="document (default)")
    embed.add_argument(
        "--plain-queries",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="queries: bare (--plain-queries) or Instruct: format (--no-plain-queries); default: as the model records",
    )
    _model_options(embed)
    add_engine_options(embed)
    embed.set_defaults(func=_guarded(_cmd_embed))

    rerank = subparsers.add_parser(
        "rerank-run",
        help="rerank a first-stage TREC run over a BEIR folder",
        description="Rerank the top --depth candidates of every query of a TREC run with the listwise prompt and "
        "write a TREC run (cosine scores, the run's query order). With --embeddings, stored document vectors are "
        "reused: one forward pass per query.",
    )
    rerank.add_argument("--data", required=True, help="BEIR folder (corpus.jsonl, queries.jsonl)")
    rerank.add_argument("--run", required=True, help="first-stage TREC run (each query's lines consecutive)")
    rerank.add_argument("--output", required=True, help="TREC run file to write")
    rerank.add_argument("--depth", type=int, default=100, help="candidates per query (100)")
    rerank.add_argument("--embeddings", default=None, help="Parquet (id, vector) from e2rank embed: reuse them")
    add_prompt_options(rerank)
    _model_options(rerank)
    add_engine_options(rerank)
    rerank.set_defaults(func=_guarded(_cmd_rerank_run))


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Scale errors (missing extra, unreachable cluster, bad record) as one line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except ScaleError as exc:
            print(f"e2rank: error: {exc}", file=sys.stderr)
            return 2

    return run


def _cmd_embed(args: argparse.Namespace) -> int:
    from .api import embed

    count = embed(args.data, args.output, kind=args.kind, engine=args.engine, options=engine_options(args))
    print(f"wrote {count} {args.kind} embeddings to {args.output}")
    return 0


def _cmd_rerank_run(args: argparse.Namespace) -> int:
    from .api import rerank_run

    written = rerank_run(
        args.data,
        args.run,
        args.output,
        depth=args.depth,
        embeddings=args.embeddings,
        engine=args.engine,
        options=engine_options(args),
    )
    print(f"wrote {written} reranked queries to {args.output}")
    return 0
