"""The ``e2rank`` command line: ``e2rank rerank``, ``e2rank eval``, ``e2rank train``, ``e2rank models``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from .cli_options import add_prompt_options
from .resolve import available_offline_models, default_model
from .rocchio import check_query_weight
from .validation import check_optional_positive_int, check_positive_int, check_query

#: Sub-commands that live in their own modules; each module has ``register(subparsers)``.
_PLUGIN_COMMANDS = (
    "e2rank_core.evaluation.cli",
    "e2rank_core.training.cli",
    "e2rank_core.server.cli",
    "e2rank_core.search.cli",
    "e2rank_core.scale.cli",
)


class InputError(ValueError):
    """Bad command-line input, found before any model is loaded (exit code 2, one line, no traceback)."""


def _read_documents(stream: TextIO, input_format: str, source: str) -> list[str]:
    documents: list[str] = []
    try:
        lines = list(stream)
    except UnicodeDecodeError as exc:
        raise InputError(f"{source} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if input_format == "lines":
            documents.append(line)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{source}, line {number}: not JSON ({exc}); use --input-format lines for plain text"
            ) from None
        text = record if isinstance(record, str) else record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise InputError(f"{source}, line {number}: no string 'text' field")
        documents.append(text)
    if not documents:
        raise InputError(f"{source} holds no documents (empty or whitespace only)")
    return documents


def _check_query_weight(value: float) -> float:
    try:
        return check_query_weight(value)
    except ValueError:
        raise InputError(f"--query-weight must be finite and >= 0, got {value}") from None


def _cmd_rerank(args: argparse.Namespace) -> int:
    # Every input check runs before the model loads: a mistake costs milliseconds, not a model load.
    query = check_query(args.query)
    top_k = check_optional_positive_int("--top-k", args.top_k)
    check_optional_positive_int("--num-input-docs", args.num_input_docs)
    query_weight = None if args.query_weight is None else _check_query_weight(args.query_weight)
    check_positive_int("--batch-size", args.batch_size)
    if args.file == "-":
        documents = _read_documents(sys.stdin, args.input_format, "standard input")
    else:
        try:
            with open(args.file, encoding="utf-8") as handle:
                documents = _read_documents(handle, args.input_format, args.file)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise InputError(f"cannot read {args.file}: {exc.strerror}") from None

    from .model import E2RankModel

    model = E2RankModel(
        args.model,
        device=args.device,
        dtype=args.dtype,
        backend=args.backend,
        num_input_docs=args.num_input_docs,
        batch_size=args.batch_size,
        show_progress_bar=not args.quiet and len(documents) > 64,
    )
    results = model.rerank(query, documents, top_k=top_k, query_weight=query_weight)
    for rank, hit in enumerate(results, start=1):
        if args.jsonl:
            print(
                json.dumps(
                    {"rank": rank, "index": hit.index, "score": round(hit.score, 6), "text": hit.document},
                    ensure_ascii=False,
                )
            )
        else:
            snippet = " ".join(hit.document.split())
            print(f"{rank:>3}  {hit.score:+.4f}  [{hit.index}] {snippet[:100]}{'…' if len(snippet) > 100 else ''}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    for name in available_offline_models():
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="e2rank", description="E2Rank: one embedding model as retriever and listwise reranker."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    rerank = sub.add_parser(
        "rerank",
        help="rerank documents for a query",
        description="Rerank documents (one per line, or JSON lines with a 'text' field) for a "
        "query and print them best first.",
    )
    rerank.add_argument("file", nargs="?", default="-", help="documents file, '-' for standard input (default)")
    rerank.add_argument("--query", "-q", required=True, help="the search query")
    rerank.add_argument("--model", "-m", default=None, help=f"model id or path (default: {default_model()})")
    rerank.add_argument("--top-k", type=int, default=None, help="print only the best K")
    add_prompt_options(rerank)
    rerank.add_argument("--input-format", choices=["lines", "jsonl"], default="lines")
    rerank.add_argument("--jsonl", action="store_true", help="print JSON lines (rank, index, score, text)")
    rerank.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    rerank.add_argument("--dtype", default=None, help="float32, float16 or bfloat16")
    rerank.add_argument("--backend", default=None, help="torch (default), onnx, openvino, onnx-int8, openvino-int8")
    rerank.add_argument("--batch-size", type=int, default=32)
    rerank.add_argument("--quiet", action="store_true", help="no progress bar")
    rerank.set_defaults(func=_cmd_rerank)

    models = sub.add_parser("models", help="list the model ids that load offline here")
    models.set_defaults(func=_cmd_models)

    for module_name in _PLUGIN_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # that sub-command is not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if getattr(args, "model", "unset") is None:
        args.model = default_model()
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, ImportError) as exc:  # bad input, a missing model, file or extra
        print(f"e2rank: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("e2rank: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else is our bug: one line, the traceback only with --verbose
        if args.verbose:
            raise
        print(
            f"e2rank: internal error: {type(exc).__name__}: {_one_line(exc)} (run with -v for details)", file=sys.stderr
        )
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
