"""Command-line options that several ``e2rank`` commands share, defined once so that they read the same everywhere."""

from __future__ import annotations

import argparse

__all__ = ["add_prompt_options"]


def add_prompt_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--num-input-docs N`` and ``--query-weight FLOAT``, both defaulting to ``None``: the model's own settings
    (what its ``e2rank_config.json`` stores, else the paper's 20 and 0; see :mod:`e2rank_core.model_config`)."""
    parser.add_argument(
        "--num-input-docs",
        type=int,
        default=None,
        help="candidates in the listwise prompt (default: the model's, 20 unless its e2rank_config.json stores "
        "another)",
    )
    parser.add_argument(
        "--query-weight",
        type=float,
        default=None,
        metavar="FLOAT",
        help="score by cosine to normalize(p + FLOAT * q), >= 0; 0 is the paper's listwise score "
        "(default: the model's, 0 unless its e2rank_config.json stores another)",
    )
