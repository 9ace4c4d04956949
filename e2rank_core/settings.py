"""What the framework adapters share: how a model is named, loaded and held, and how their options are checked.

Every adapter (Haystack, LlamaIndex, LangChain) holds a :class:`ModelSettings`, never a loaded model: the model is
looked up through :func:`~e2rank_core.shared_model` on each use (a dictionary look-up), so

* a Haystack embedder, a LlamaIndex postprocessor and a LangChain compressor that name the same model and settings
  use one loaded copy of the weights and one embedding cache;
* copying or pickling an adapter copies its settings only (the one pickling rule: there is nothing else to pickle).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import E2RankModel, shared_model
from .runtimes import BACKENDS, check_backend  # noqa: F401 - the adapters import every option check from here
from .validation import check_bool, check_optional_float, check_positive_int, check_str_list

#: Accepted ``dtype`` spellings (``None`` = the checkpoint's on accelerators, float32 on the CPU; ``float64`` = exact
#: mode: embeddings independent of batching, about 2x the CPU time).
DTYPES = ("float32", "fp32", "float16", "fp16", "half", "bfloat16", "bf16", "float64", "fp64", "double", "auto")


def check_model_name(value: object) -> str | None:
    """``None`` (the default model) or a non-empty model id or path."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"model must be a model id or path (a string), got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ValueError("model must be a non-empty model id or path; leave it out for the default model")
    return value


def check_dtype(value: object) -> str | None:
    """``None`` or one of :data:`DTYPES` (``torch.float16`` style names accepted)."""
    if value is None:
        return None
    if not isinstance(value, str):
        name = str(value)
        if not name.startswith("torch."):
            raise TypeError(f"dtype must be one of {DTYPES} or None, got {type(value).__name__} {value!r}")
        value = name
    cleaned = value.lower().removeprefix("torch.")
    if cleaned not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} or None, got {value!r}")
    return cleaned


def check_device(value: object) -> str | None:
    """``None``/``"auto"`` or a torch device string (availability is checked when the model loads)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', or None, got {value!r}")
    return value


def check_kwargs(name: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping or None, got {type(value).__name__}")
    return dict(value)


@dataclass(frozen=True)
class ModelSettings:
    """Everything that selects a loaded model. Two adapters with equal settings share one :class:`E2RankModel`."""

    model: str
    device: str | None = None
    dtype: str | None = None
    token: str | None = field(default=None, repr=False)
    trust_remote_code: bool = False
    model_kwargs: dict[str, Any] | None = None
    backend: str = "torch"

    def load(self) -> E2RankModel:
        """The process-wide model for these settings (loaded on first use, then looked up)."""
        return shared_model(
            self.model,
            device=self.device,
            dtype=self.dtype,
            token=self.token,
            trust_remote_code=self.trust_remote_code,
            model_kwargs=self.model_kwargs,
            backend=self.backend,
        )


def resolve_alias(values: dict[str, Any], name: str, *aliases: str) -> None:
    """Accept other frameworks' spelling of an option (e.g. ``model_name`` for ``model``), in place.

    Both spellings given with different values is an error; an alias is removed once moved to ``name``.
    """
    for alias in aliases:
        if alias not in values:
            continue
        value = values.pop(alias)
        if name in values and values[name] is not None and values[name] != value:
            raise ValueError(f"{name} ({values[name]!r}) and {alias} ({value!r}) disagree; pass one of them")
        values[name] = value


# One name for each shared option check, so every adapter raises the same error class for the same input.
check_top_k = check_positive_int
check_threshold = check_optional_float
check_flag = check_bool
check_meta_fields = check_str_list


def reject_unknown_arguments(component: str, given: Mapping[str, Any], known: Iterable[str]) -> None:
    """A misspelled or foreign option is a ``TypeError`` (as a Python keyword argument would be), never ignored."""
    known = set(known)
    unknown = sorted(k for k in given if k not in known)
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(f"{component} got unexpected argument(s): {', '.join(hints)}")
