"""``e2rank serve``: run the rerank and embedding service with uvicorn.

Example::

    e2rank serve --port 8000 --api-key secret            # the bundled model on http://127.0.0.1:8000
    e2rank serve --model Alibaba-NLP/E2Rank-0.6B --device cuda --host 0.0.0.0 --max-batch-size 64
    e2rank serve --ray --replicas 2                      # the same app on Ray Serve replicas (the 'ray' extra)

SIGTERM (or Ctrl-C) stops accepting connections, lets in-flight requests finish, then exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal

from ..cli_options import add_prompt_options
from .settings import ServerSettings

_DEFAULTS = ServerSettings()
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve rerank and embedding endpoints over HTTP (Cohere, TEI, OpenAI shapes)",
        description="Serve one model over HTTP: /v1/rerank, /v2/rerank, /rerank (Cohere/Jina/vLLM or TEI), "
        "/v1/embeddings (OpenAI), /v1/embed and /v2/embed (Cohere), /v1/models, /health, /metrics, /docs. "
        "Needs the 'server' extra: pip install 'e2rank[server]'.",
    )
    parser.add_argument("--model", "-m", default=None, help="model id or path (default: the bundled model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("E2RANK_API_KEY") or None,
        help="require 'Authorization: Bearer KEY' (default: $E2RANK_API_KEY; none: any token is accepted)",
    )
    parser.add_argument("--served-model-name", default=None, help="model name in responses (default: the id)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--dtype", default=None, help="float32, float16 or bfloat16")
    parser.add_argument("--backend", default=None, help="torch (default), onnx, openvino, onnx-int8, openvino-int8")
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size, help="texts per forward pass")
    add_prompt_options(parser)
    parser.add_argument("--cache-size", type=int, default=_DEFAULTS.cache_size, help="embeddings kept in the cache")
    parser.add_argument("--max-batch-size", type=int, default=_DEFAULTS.max_batch_size, help="requests per batch")
    parser.add_argument(
        "--max-wait-ms", type=float, default=_DEFAULTS.max_wait_ms, help="wait of a batch's first request"
    )
    parser.add_argument("--no-batching", action="store_true", help="one model call per request (benchmarks)")
    parser.add_argument("--max-documents", type=int, default=_DEFAULTS.max_documents, help="documents per request")
    parser.add_argument("--max-text-chars", type=int, default=_DEFAULTS.max_text_chars, help="characters per text")
    parser.add_argument("--max-body-bytes", type=int, default=_DEFAULTS.max_body_bytes, help="request body bytes")
    parser.add_argument("--max-queue", type=int, default=_DEFAULTS.max_queue, help="requests queued before 429")
    parser.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds to drain on SIGTERM (30)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    from ..scale.serve_ray import add_ray_serve_options  # argparse only: Ray is imported when --ray runs

    add_ray_serve_options(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..resolve import resolve_model

    settings = ServerSettings(
        api_key=args.api_key,
        served_model_name=args.served_model_name,
        batching=not args.no_batching,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_documents=args.max_documents,
        max_text_chars=args.max_text_chars,
        max_body_bytes=args.max_body_bytes,
        max_queue=args.max_queue,
        device=args.device,
        dtype=args.dtype,
        backend=args.backend,
        batch_size=args.batch_size,
        num_input_docs=args.num_input_docs,
        cache_size=args.cache_size,
        query_weight=args.query_weight,
    )
    resolve_model(args.model)  # fail now, with the core's message, if the model cannot load here
    if args.ray:
        from ..scale.serve_ray import run_ray_serve

        return run_ray_serve(args, settings)
    try:
        import uvicorn

        from .app import create_app
    except ModuleNotFoundError as exc:
        raise SystemExit(f"e2rank serve needs the 'server' extra: pip install 'e2rank[server]' ({exc})") from None
    logger = logging.getLogger("e2rank.server")
    if args.host not in {"127.0.0.1", "localhost", "::1"} and settings.api_key is None:
        logger.warning("e2rank serve: listening on %s without --api-key: anyone who can reach it can use it", args.host)
    # uvicorn drains in-flight requests on SIGTERM / SIGINT, then re-raises the signal to the handler it found:
    # with these, a drained shutdown ends with exit status 0 instead of "killed by SIGTERM".
    stopped_by: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: stopped_by.append(number)) for sig in _STOP_SIGNALS}
    try:
        uvicorn.run(
            create_app(args.model, settings),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            timeout_graceful_shutdown=args.graceful_timeout,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped_by:
        logger.info("e2rank serve: stopped by %s after draining", signal.Signals(stopped_by[0]).name)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m e2rank_core.server.cli serve ...``: the same command without the other sub-commands."""
    parser = argparse.ArgumentParser(prog="e2rank")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    if args.model is None:
        from ..resolve import default_model

        args.model = default_model()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
