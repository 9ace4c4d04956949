"""Every input check of e2rank, in one place: the core and the three adapters import these.

Errors are ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad value), with the argument's name in
the message. Numpy scalars count as the Python numbers they hold; ``bool`` never counts as a number.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_optional_float",
    "check_optional_positive_int",
    "check_positive_int",
    "check_query",
    "check_str_list",
    "check_texts",
    "check_vector",
]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def check_positive_int(name: str, value: object) -> int:
    """An integer >= 1 (numpy integers included); returns it as a plain ``int``."""
    if not _is_int(value):
        raise TypeError(f"{name} must be a positive integer, got {type(value).__name__} {value!r}")
    number = int(value)  # type: ignore[call-overload]
    if number < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {number}")
    return number


def check_optional_positive_int(name: str, value: object) -> int | None:
    """``None`` or :func:`check_positive_int`."""
    return None if value is None else check_positive_int(name, value)


def check_optional_float(name: str, value: object) -> float | None:
    """``None`` or a finite real number (numpy floats and ints included); returns a plain ``float``."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or None, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number}")
    return number


def check_bool(name: str, value: object) -> bool:
    """A real boolean: ``'false'``, ``'no'``, ``0`` and ``1`` are refused instead of silently meaning something."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(f"{name} must be true or false, got {type(value).__name__} {value!r}")


def check_str_list(name: str, value: object) -> list[str]:
    """``None`` (empty) or a list of strings; a lone string is refused (it would be split into characters)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of strings, got {type(value).__name__} {value!r}")
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a string, got {type(item).__name__}")
    return items


def _check_encodable(name: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not valid Unicode text (lone surrogate at position {exc.start})") from None


def check_query(query: object) -> str:
    """A non-empty, non-blank string."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ValueError("query must be a non-empty string")
    _check_encodable("query", query)
    return query


def check_texts(name: str, texts: object) -> list[str]:
    """A list (any iterable but a lone string) of strings; empty strings are allowed."""
    if isinstance(texts, str | bytes):
        raise TypeError(f"{name} must be a list of strings, not a single {type(texts).__name__}")
    try:
        items = list(texts)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}") from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a string, got {type(item).__name__}")
        _check_encodable(f"{name}[{i}]", item)
    return items


def check_vector(name: str, vector: Any, dimension: int, model_name: str) -> np.ndarray:
    """One embedding given by a caller: real, finite, non-zero, of the model's dimension; float64, not normalised."""
    if isinstance(vector, str | bytes):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(vector).__name__}")
    array = np.asarray(vector)
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {array.shape}")
    if array.shape[0] != dimension:
        raise ValueError(
            f"{name} has dimension {array.shape[0]}, but {model_name!r} produces {dimension}-dimensional "
            "embeddings: it was made by another model"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def check_first_stage_scores(scores: Sequence[object] | None, n_documents: int) -> list[float | None] | None:
    """``None``, or one finite number (or ``None`` for unknown) per document."""
    if scores is None:
        return None
    if isinstance(scores, str | bytes):
        raise TypeError("first_stage_scores must be a list of numbers")
    items = list(scores)
    if len(items) != n_documents:
        raise ValueError(f"first_stage_scores has {len(items)} entries for {n_documents} documents")
    return [check_optional_float(f"first_stage_scores[{i}]", s) for i, s in enumerate(items)]
