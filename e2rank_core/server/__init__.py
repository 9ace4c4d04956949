"""``e2rank serve``: one E2Rank model as a rerank and embedding service (extra ``e2rank[server]``).

Importing this package is cheap: FastAPI, uvicorn and the model load only when ``create_app`` or
``app_from_env`` is first used.

Example::

    from e2rank_core.server import ServerSettings, create_app

    app = create_app("e2rank/minilm-l6-e2rank", ServerSettings(api_key="secret"))
    # uvicorn.run(app, host="127.0.0.1", port=8000), or from a shell:
    #   e2rank serve --port 8000 --api-key secret
    #   uvicorn --factory e2rank_core.server:app_from_env --port 8000
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import ServerSettings

if TYPE_CHECKING:
    from .app import app_from_env, create_app

__all__ = ["ServerSettings", "app_from_env", "create_app"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "app_from_env"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
