"""The score convention: cosine similarity of L2-normalised embeddings, ranked by a stable sort."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

DocT = TypeVar("DocT")


@dataclass(frozen=True, slots=True)
class RankedDocument(Generic[DocT]):
    """One reranked candidate.

    Attributes:
        index: position of the document in the input list.
        score: cosine similarity between the listwise prompt embedding and the document embedding, in [-1, 1].
        document: the input document (the text as given, before any truncation).
    """

    index: int
    score: float
    document: DocT


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32, exact for any finite magnitude; all-zero rows stay zero.

    The one normalisation of e2rank: model outputs and caller-given vectors both pass through here. Rows are first
    divided by their largest absolute value (in float64), so neither ``1e-25`` nor ``1e20`` scales under- or
    overflow the norm.
    """
    rows = np.asarray(matrix, dtype=np.float64)
    peak = np.max(np.abs(rows), axis=-1, keepdims=True) if rows.size else np.ones((*rows.shape[:-1], 1))
    rows = rows / np.where(peak > 0, peak, 1.0)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def cosine_scores(query_embedding: np.ndarray, document_embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of one L2-normalised query vector against L2-normalised document rows (float32)."""
    return np.asarray(document_embeddings, dtype=np.float32) @ np.asarray(query_embedding, dtype=np.float32)


def rank_by_score(scores: np.ndarray, documents: list[DocT], top_k: int | None = None) -> list[RankedDocument[DocT]]:
    """Sort by descending score, ties broken by input order, and keep the first ``top_k``."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return [RankedDocument(index=int(i), score=float(scores[i]), document=documents[i]) for i in order]


def scale_score(score: float) -> float:
    """Map a cosine score from [-1, 1] to [0, 1] with ``(score + 1) / 2``.

    Monotonic, so it never changes an order; it is not a calibrated probability.
    """
    return (float(score) + 1.0) / 2.0
