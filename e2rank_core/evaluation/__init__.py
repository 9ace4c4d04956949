"""Evaluation on BEIR-format collections: ``e2rank eval`` and :func:`evaluate`."""

from .data import BeirCollection, bm25_run, load_beir, read_run, write_run
from .evaluate import MODES, EvalResult, evaluate, save_result

__all__ = [
    "MODES",
    "BeirCollection",
    "EvalResult",
    "bm25_run",
    "evaluate",
    "load_beir",
    "read_run",
    "save_result",
    "write_run",
]
