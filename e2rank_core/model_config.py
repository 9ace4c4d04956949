"""Settings a model folder carries for e2rank beyond sentence-transformers' own files: ``e2rank_config.json``.

A model shipped by ``benchmarks/selection.py`` stores the rerank settings chosen for it on a dev split, so that
``E2RankModel(model)`` (and every adapter, the CLI and the service) use them without flags; an argument given by the
caller always wins. A folder without the file (any other model) gets the paper's settings.

Example ``e2rank_config.json``::

    {"query_weight": 2.0, "num_input_docs": 20}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .rocchio import check_query_weight
from .validation import check_positive_int

__all__ = ["CONFIG_FILE", "DEFAULT_NUM_INPUT_DOCS", "StoredSettings", "read_stored_settings"]

CONFIG_FILE = "e2rank_config.json"
#: The paper's prompt size: the query and its top 20 candidates.
DEFAULT_NUM_INPUT_DOCS = 20


@dataclass(frozen=True)
class StoredSettings:
    """The rerank defaults of one model: the paper's unless its folder stores others."""

    query_weight: float = 0.0  # see e2rank_core.rocchio; 0 = the paper's cosine to the prompt embedding
    num_input_docs: int = DEFAULT_NUM_INPUT_DOCS


def read_stored_settings(model_path: str | os.PathLike[str]) -> StoredSettings:
    """The settings in ``model_path/e2rank_config.json``; the paper's defaults without one (or for a single file).

    Raises:
        ValueError: the file is not a JSON object, or a stored value is invalid (named in the message).
    """
    config = Path(model_path) / CONFIG_FILE
    if not config.is_file():
        return StoredSettings()
    try:
        stored = json.loads(config.read_text(encoding="utf-8"))
        if not isinstance(stored, dict):
            raise TypeError("not a JSON object")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{config}: cannot read the stored settings ({exc})") from None
    defaults = StoredSettings()
    values: dict[str, Any] = {}
    checks = {"query_weight": check_query_weight, "num_input_docs": partial(check_positive_int, "num_input_docs")}
    for name, check in checks.items():
        try:
            values[name] = check(stored.get(name, getattr(defaults, name)))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{config}: {name} is invalid ({exc})") from None
    return StoredSettings(**values)
