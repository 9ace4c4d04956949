"""Rocchio-style scoring: the listwise prompt embedding pulled towards the query's own retrieval embedding.

E2Rank scores candidates by cosine similarity to the listwise prompt embedding ``p`` (the query plus its top
candidates, a pseudo-relevance-feedback query). This module adds the original query back, as Rocchio's formula
keeps the original query next to the feedback centroid::

    score(d) = cos(normalize(normalize(p) + weight * normalize(q)), d)

``weight = 0`` is the paper's listwise score; a large weight tends to the plain cosine rerank with ``q``. ``q`` costs
one short extra forward pass, or none when the retrieval query embedding is kept from the first stage.

Example::

    from e2rank_core import E2RankModel
    from e2rank_core.rocchio import combine_query_embedding

    model = E2RankModel("e2rank/minilm-l6-e2rank")
    docs = ["Paris is the capital of France.", "Berlin is in Germany.", "Lyon is in France."]
    doc_emb = model.embed_documents(docs)
    prompt = model.embed_listwise_prompts(["capital of France"], [docs])[0]
    query = model.embed_queries(["capital of France"], plain=True)[0]
    scores = doc_emb @ combine_query_embedding(prompt, query, 0.5)  # cosine: every vector is unit length
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["check_optional_query_weight", "check_query_weight", "combine_query_embedding"]


def check_query_weight(weight: object) -> float:
    """A query weight as a float: a finite real number >= 0 (bools and strings refused)."""
    if isinstance(weight, bool) or not isinstance(weight, int | float | np.integer | np.floating):
        raise TypeError(f"query_weight must be a real number, got {type(weight).__name__}")
    if not np.isfinite(weight) or weight < 0:
        raise ValueError(f"query_weight must be finite and >= 0, got {weight}")
    return float(weight)


def check_optional_query_weight(weight: object) -> float | None:
    """``None`` (the model's own weight) or a valid query weight (:func:`check_query_weight`)."""
    return None if weight is None else check_query_weight(weight)


def combine_query_embedding(prompt_emb: ArrayLike, query_emb: ArrayLike, weight: float) -> np.ndarray:
    """``normalize(normalize(prompt_emb) + weight * normalize(query_emb))`` as float32.

    Both inputs are L2-normalised first, so ``weight`` is the query's share relative to the prompt whatever the
    raw norms. Works on one vector ``(dim,)`` or row-wise on matrices ``(n, dim)`` (same shape for both).

    Args:
        prompt_emb: the listwise prompt embedding(s).
        query_emb: the query embedding(s) (plain or ``Instruct:`` retrieval form, from the same model).
        weight: the query's weight, finite and >= 0; 0 returns the normalised prompt embedding.

    Raises:
        TypeError: ``weight`` is not a real number.
        ValueError: shapes differ, an input is not 1-D/2-D, holds NaN/inf or an all-zero vector, or the weight is
            negative or not finite, or the two unit vectors cancel out.

    Example::

        >>> print(combine_query_embedding([1.0, 0.0], [0.0, 2.0], 1.0).round(4))
        [0.7071 0.7071]
    """
    weight = check_query_weight(weight)
    prompt = _unit_rows("prompt_emb", prompt_emb)
    query = _unit_rows("query_emb", query_emb)
    if prompt.shape != query.shape:
        raise ValueError(f"prompt_emb has shape {prompt.shape} but query_emb has shape {query.shape}")
    combined = prompt + np.float32(weight) * query
    norms = np.linalg.norm(combined, axis=-1, keepdims=True)
    if np.any(norms < 1e-6):
        raise ValueError("the prompt and query embeddings cancel out (opposite vectors with weight 1)")
    return (combined / norms).astype(np.float32)


def _unit_rows(name: str, values: ArrayLike) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric vector or matrix: {exc}") from exc
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise ValueError(f"{name} must be a vector (dim,) or a matrix (n, dim), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name} contains an all-zero vector, which has no direction")
    return array / norms
