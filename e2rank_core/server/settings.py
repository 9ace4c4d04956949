"""Settings of ``e2rank serve``: limits, batching and model options (no web framework imported here).

Example::

    from e2rank_core.server import ServerSettings, create_app

    settings = ServerSettings(api_key="secret", max_batch_size=16, max_wait_ms=2.0)
    app = create_app("e2rank/minilm-l6-e2rank", settings)

    # or from the environment (E2RANK_API_KEY, E2RANK_MAX_BATCH_SIZE, ...), as `app_from_env` does:
    settings = ServerSettings.from_env()
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..rocchio import check_optional_query_weight

#: Fields whose default is ``None`` but whose environment value is a number: parsed as the type of this example.
_OPTIONAL_NUMBERS: dict[str, int | float] = {"num_input_docs": 0, "query_weight": 0.0}


@dataclass(frozen=True)
class ServerSettings:
    """How the service batches, what it accepts, and how it loads a model given by name.

    Attributes:
        api_key: when set, every API request needs ``Authorization: Bearer <api_key>`` (401 otherwise); when
            ``None``, any bearer token (or none) is accepted.
        served_model_name: the name reported in responses and ``/v1/models`` (default: the model's id).
        batching: gather concurrent requests into shared forward passes (``False``: one model call per request).
        max_batch_size: most requests in one gathered batch.
        max_wait_ms: how long the first request of a batch waits for company.
        max_documents: most documents (or texts) in one request; more is a 422.
        max_text_chars: most characters in one query or document; longer is a 422.
        max_body_bytes: largest request body; larger is a 413.
        max_queue: most requests waiting for or in the model at once; more get 429 with ``Retry-After``.
        retry_after_s: the ``Retry-After`` seconds sent with 429 and 503.
        device, dtype, backend, batch_size, num_input_docs, cache_size, query_weight: passed to ``E2RankModel`` when
            the model is given by name; ``num_input_docs`` and ``query_weight`` ``None`` (default): the model's (what
            its ``e2rank_config.json`` stores, else 20 and 0).
    """

    api_key: str | None = None
    served_model_name: str | None = None
    batching: bool = True
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_documents: int = 1000
    max_text_chars: int = 100_000
    max_body_bytes: int = 16 * 1024 * 1024
    max_queue: int = 512
    retry_after_s: int = 1
    device: str | None = None
    dtype: str | None = None
    backend: str | None = None
    batch_size: int = 32
    num_input_docs: int | None = None
    cache_size: int = 10_000
    query_weight: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_documents", "max_text_chars", "max_body_bytes", "max_queue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("batch_size", "num_input_docs", "retry_after_s"):
            value = getattr(self, name)
            if name == "num_input_docs" and value is None:
                continue  # the model's own
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        object.__setattr__(self, "query_weight", check_optional_query_weight(self.query_weight))
        if self.cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {self.cache_size}")
        if not (self.max_wait_ms >= 0):
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must be a non-empty string or None")

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``E2RankModel`` / ``shared_model`` when the service loads the model itself."""
        return {
            "device": self.device,
            "dtype": self.dtype,
            "backend": self.backend,
            "batch_size": self.batch_size,
            "num_input_docs": self.num_input_docs,
            "cache_size": self.cache_size,
            "query_weight": self.query_weight,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Read ``E2RANK_<FIELD>`` variables (``E2RANK_API_KEY``, ``E2RANK_MAX_QUEUE``, ``E2RANK_BATCHING=0`` ...)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(f"E2RANK_{field.name.upper()}")
            if raw is None or raw == "":
                continue
            default = _OPTIONAL_NUMBERS.get(field.name, field.default)
            if isinstance(default, bool):
                values[field.name] = raw.strip().lower() not in {"0", "false", "no", "off"}
            elif isinstance(default, int):
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    raise ValueError(f"E2RANK_{field.name.upper()} must be an integer, got {raw!r}") from None
            elif isinstance(default, float):
                try:
                    values[field.name] = float(raw)
                except ValueError:
                    raise ValueError(f"E2RANK_{field.name.upper()} must be a number, got {raw!r}") from None
            else:
                values[field.name] = raw
        values.update(overrides)
        return cls(**values)
