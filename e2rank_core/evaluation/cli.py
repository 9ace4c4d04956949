"""``e2rank eval``: measure a model on a BEIR-format folder."""

from __future__ import annotations

import argparse
import json

from ..cli_options import add_prompt_options
from ..scale.cli import add_engine_options, engine_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate first stage / cosine / listwise reranking on a BEIR folder",
        description="Rerank a first stage (the folder's bm25_top100.trec, --run, or BM25 with bm25s) and score it "
        "with ir-measures. Writes a TREC run and a JSON summary when --output is given.",
    )
    parser.add_argument("--model", "-m", default=None, help="model id or path (default: the offline default)")
    parser.add_argument("--data", required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", default=None, help="first-stage TREC run file")
    source.add_argument("--first-stage", choices=["bm25"], default=None, help="force BM25 (bm25s) as first stage")
    parser.add_argument("--depth", type=int, default=100, help="candidates per query (100)")
    add_prompt_options(parser)
    parser.add_argument("--mode", choices=["listwise", "embedding", "first-stage"], default="listwise")
    parser.add_argument("--measures", nargs="+", default=["nDCG@10"], help="ir-measures names (nDCG@10)")
    parser.add_argument("--split", default="test", help="qrels split (test)")
    parser.add_argument("--max-queries", type=int, default=None, help="evaluate only the first N queries")
    parser.add_argument("--output", default=None, help="folder for the run file and the summary")
    parser.add_argument(
        "--plain-queries",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="embedding mode: bare queries (--plain-queries) or the Instruct: format (--no-plain-queries); "
        "default: what the model records (bare for untrained base encoders)",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--backend", default=None, help="torch (default), onnx, openvino, onnx-int8, openvino-int8")
    parser.add_argument("--batch-size", type=int, default=32)
    add_engine_options(parser, batch_size=False)  # --engine ray: the listwise rerank on Ray workers
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..model import E2RankModel
    from .evaluate import evaluate, save_result

    model = None
    if args.mode != "first-stage" and args.engine == "local":
        model = E2RankModel(
            args.model,
            device=args.device,
            dtype=args.dtype,
            backend=args.backend,
            batch_size=args.batch_size,
            num_input_docs=args.num_input_docs,
            plain_queries=args.plain_queries,
            query_weight=args.query_weight,
        )
    result = evaluate(
        model,
        args.data,
        mode=args.mode,
        run_file=args.run,
        bm25=args.first_stage == "bm25",
        depth=args.depth,
        num_input_docs=args.num_input_docs,
        measures=args.measures,
        split=args.split,
        max_queries=args.max_queries,
        engine=args.engine,
        engine_options=None if args.engine == "local" else engine_options(args, progress=False),
    )
    print(json.dumps(result.summary(), indent=2))
    if args.output:
        run_path, summary_path = save_result(result, args.output)
        print(f"wrote {run_path} and {summary_path}")
    return 0
