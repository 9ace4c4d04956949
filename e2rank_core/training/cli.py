"""``e2rank build-train-data`` and ``e2rank train``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    build = subparsers.add_parser(
        "build-train-data",
        help="make train.jsonl lists from a BEIR folder, a first stage and qrels",
        description="Lists of --list-size documents per judged query: relevant documents plus first-stage negatives, "
        "in first-stage order; the teacher ranking orders by relevance grade, then by --teacher-model's cosine "
        "(if given) or first-stage rank. With --unlabeled, every query gets first-stage lists ranked by the "
        "teacher model alone.",
    )
    build.add_argument("--data", required=True, help="BEIR folder")
    build.add_argument("--split", default="train", help="qrels split to use (train)")
    build.add_argument("--unlabeled", action="store_true", help="no qrels: all queries, teacher-ranked lists")
    build.add_argument("--teacher-model", default=None, help="model whose cosine breaks grade ties / ranks lists")
    build.add_argument(
        "--teacher-plain-queries", action="store_true", help="teacher embeds bare queries (no instruction)"
    )
    build.add_argument("--run", default=None, help="first-stage run (default: bm25_top100.trec, else bm25s)")
    build.add_argument("--depth", type=int, default=100)
    build.add_argument("--list-size", type=int, default=16)
    build.add_argument("--lists-per-query", type=int, default=1)
    build.add_argument("--max-positives", type=int, default=4)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--output", required=True, help="train.jsonl to write")
    build.set_defaults(func=_build)

    train = subparsers.add_parser(
        "train",
        help="train a model with the E2Rank objective (InfoNCE + RankNet)",
        description="Stage-2 E2Rank training: 1.0 x InfoNCE (temperature 0.03, in-batch negatives) + 2.0 x RankNet "
        "(cosine x 10 of the listwise prompt against each document). Saves a sentence-transformers folder.",
    )
    train.add_argument("--model", "-m", default="sentence-transformers/all-MiniLM-L6-v2", help="base model")
    train.add_argument("--train-file", nargs="+", required=True, help="train.jsonl file(s)")
    train.add_argument("--output", required=True, help="output model folder (+ checkpoints/, training/)")
    train.add_argument("--epochs", type=float, default=1.0)
    train.add_argument("--batch-size", type=int, default=8, help="lists (queries) per forward batch (8)")
    train.add_argument("--gradient-accumulation", type=int, default=1)
    train.add_argument("--lr", type=float, default=2e-5)
    train.add_argument("--warmup-ratio", type=float, default=0.1)
    train.add_argument("--ranknet-factor", type=float, default=2.0, help="RankNet weight (2.0)")
    train.add_argument("--temperature", type=float, default=0.03, help="InfoNCE temperature (0.03)")
    train.add_argument("--max-steps", type=int, default=None)
    train.add_argument("--max-minutes", type=float, default=None, help="time budget: stop and save after it")
    train.add_argument("--max-document-tokens", type=int, default=None, help="document token budget (model's)")
    train.add_argument("--max-prompt-tokens", type=int, default=None, help="listwise prompt budget (model's)")
    train.add_argument("--save-steps", type=int, default=50, help="checkpoint every N optimizer steps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default=None)
    train.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)


def _build(args: argparse.Namespace) -> int:
    from .data import build_lists, write_jsonl

    teacher = None
    if args.teacher_model:
        from ..model import E2RankModel

        teacher = E2RankModel(args.teacher_model, plain_queries=args.teacher_plain_queries)
    lists = build_lists(
        args.data,
        split=None if args.unlabeled else args.split,
        teacher=teacher,
        run_file=args.run,
        depth=args.depth,
        list_size=args.list_size,
        lists_per_query=args.lists_per_query,
        max_positives=args.max_positives,
        seed=args.seed,
    )
    print(f"wrote {write_jsonl(lists, args.output)} lists to {args.output}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .trainer import TrainConfig, train

    result = train(
        TrainConfig(
            base_model=args.model,
            train_files=args.train_file,
            output_dir=args.output,
            epochs=args.epochs,
            batch_size=args.batch_size,
            gradient_accumulation=args.gradient_accumulation,
            learning_rate=args.lr,
            warmup_ratio=args.warmup_ratio,
            ranknet_factor=args.ranknet_factor,
            temperature=args.temperature,
            max_steps=args.max_steps,
            max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
            max_document_tokens=args.max_document_tokens,
            max_prompt_tokens=args.max_prompt_tokens,
            save_steps=args.save_steps,
            seed=args.seed,
            device=args.device,
            resume=not args.no_resume,
            progress_bar=not args.quiet,
        )
    )
    print(f"trained {result.steps} steps in {result.seconds:.0f} s; model saved to {result.output_dir}")
    if result.plot:
        print(f"loss curve: {result.plot}")
    return 0
