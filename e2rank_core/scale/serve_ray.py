"""``e2rank serve --ray``: the same service app (:func:`e2rank_core.server.create_app`) as a Ray Serve deployment.

Each replica builds the app itself (``serve.ingress`` with a builder), loads the model once, and keeps the app's own
dynamic batching, limits and API key; Ray Serve's proxy spreads requests over the replicas behind one HTTP endpoint,
so the HTTP interface is unchanged. ``--replicas N`` fixes the count; ``--autoscale MIN:MAX`` lets Ray Serve scale on
ongoing requests per replica.

Example::

    e2rank serve --ray --replicas 2 --port 8000                 # a new local Ray cluster, 2 replicas
    e2rank serve --ray --ray-address auto --autoscale 1:8 --gpus-per-replica 1 --host 0.0.0.0 --api-key KEY

From Python::

    import ray
    from e2rank_core.scale.serve_ray import deploy

    ray.init()
    deploy("e2rank/minilm-l6-e2rank", port=8000, replicas=2)  # returns once the replicas are up
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from .common import ScaleError

logger = logging.getLogger("e2rank")

#: Ray Serve's application name for the service.
APP_NAME = "e2rank"


def parse_autoscale(value: str) -> tuple[int, int]:
    """``"MIN:MAX"`` → ``(MIN, MAX)`` with ``0 <= MIN <= MAX`` and ``MAX >= 1``; a clear ``ValueError`` otherwise."""
    parts = value.split(":")
    try:
        low, high = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        low = high = None
    if low is None or high is None or low < 0 or high < 1 or low > high:
        raise ValueError(f"--autoscale takes MIN:MAX replicas with 0 <= MIN <= MAX and MAX >= 1, got {value!r}")
    return low, high


def add_ray_serve_options(parser: argparse.ArgumentParser) -> None:
    """``--ray``, ``--replicas``, ``--autoscale``, ``--ray-address``, ``--gpus-per-replica`` on ``e2rank serve``."""
    group = parser.add_argument_group("Ray Serve (needs the 'ray' extra)")
    group.add_argument("--ray", action="store_true", help="serve on Ray Serve replicas instead of one uvicorn process")
    group.add_argument("--replicas", type=int, default=1, help="replicas (1); each loads the model once")
    group.add_argument("--autoscale", default=None, metavar="MIN:MAX", help="autoscale between MIN and MAX replicas")
    group.add_argument("--ray-address", default=None, help="'auto', 'ray://host:10001'; default: a new local cluster")
    group.add_argument("--gpus-per-replica", type=float, default=0.0, help="GPUs per replica, may be fractional (0)")
    group.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs per replica (1)")


def deploy(
    model: str | None = None,
    settings: Any = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    replicas: int = 1,
    autoscale: tuple[int, int] | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
) -> Any:
    """Deploy the service app on the connected Ray cluster; returns the Serve handle once every replica is up.

    ``settings`` is a :class:`e2rank_core.server.settings.ServerSettings` (default settings when ``None``).
    """
    from ray import serve

    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"--replicas must be an integer >= 1, got {replicas!r}")
    if num_cpus < 0 or num_gpus < 0:
        raise ValueError("CPUs and GPUs per replica must be >= 0")

    def build_app() -> Any:  # runs in each replica's constructor: the replica is up once its model is loaded
        from e2rank_core.model import E2RankModel
        from e2rank_core.resolve import default_model
        from e2rank_core.server.app import create_app
        from e2rank_core.server.settings import ServerSettings

        config = settings or ServerSettings()
        # the same model options as the plain service (ServerSettings.model_kwargs), loaded before the app is built
        return create_app(E2RankModel(model or default_model(), **config.model_kwargs()), config)

    @serve.deployment(name="E2RankService", ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus})
    @serve.ingress(build_app)
    class E2RankService:
        """The e2rank service app, unchanged, on one Ray Serve replica."""

    options: dict[str, Any] = {"num_replicas": replicas}
    if autoscale is not None:
        low, high = autoscale
        options = {
            "num_replicas": "auto",
            "autoscaling_config": {"min_replicas": low, "max_replicas": high, "target_ongoing_requests": 8},
        }
    serve.start(http_options={"host": host, "port": port})
    return serve.run(E2RankService.options(**options).bind(), name=APP_NAME, route_prefix="/")


def run_ray_serve(args: argparse.Namespace, settings: Any) -> int:
    """``e2rank serve --ray``: deploy, log the URL, block until SIGTERM or Ctrl-C, then tear the deployment down.

    ``args`` are the ``serve`` command's parsed arguments (with :func:`add_ray_serve_options`); ``settings`` the
    :class:`~e2rank_core.server.settings.ServerSettings` the command built from them.
    """
    try:
        return _run(args, settings)
    except ScaleError as exc:  # missing extra, unreachable cluster: one line, exit status 2
        print(f"e2rank: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Any) -> int:
    from .ray_engine import ray_session

    autoscale = parse_autoscale(args.autoscale) if args.autoscale else None
    try:
        from ray import serve
    except ImportError as exc:
        raise ScaleError(f"serve --ray needs Ray Serve ({exc.name or exc}): pip install 'e2rank[ray]'") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with ray_session(args.ray_address):
            try:
                deploy(
                    args.model,
                    settings,
                    host=args.host,
                    port=args.port,
                    replicas=args.replicas,
                    autoscale=autoscale,
                    num_cpus=args.cpus_per_replica,
                    num_gpus=args.gpus_per_replica,
                )
                size = f"{autoscale[0]}-{autoscale[1]} replicas" if autoscale else f"{args.replicas} replica(s)"
                print(f"e2rank serve --ray: http://{args.host}:{args.port} ({size}); Ctrl-C or SIGTERM stops it")
                stop.wait()
            finally:
                serve.shutdown()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
