"""The E2Rank stage-2 objective: InfoNCE on retrieval queries + RankNet on listwise-prompt scores.

``loss = 1.0 * InfoNCE + 2.0 * RankNet`` (``loss_embed_factor`` / ``loss_ranknet_factor`` of the official
``scripts/train_e2rank_0.6b.sh``). Beyond the paper, an optional *anchor* term keeps the retrieval embeddings
(queries and documents) where a frozen copy of the base model puts them (:func:`anchor_loss`), so the listwise
prompt is learned without moving the embedding space that retrieval and document reuse depend on.
The functions work on embedding tensors, so they can be checked by hand;
:class:`E2RankLoss` is the sentence-transformers loss module that embeds the collated features first.

Example::

    import torch
    from e2rank_core.training.losses import info_nce_loss, ranknet_loss

    q, docs = torch.randn(2, 8), torch.randn(2, 16, 8)
    print(info_nce_loss(q, docs, torch.zeros(2, dtype=torch.long)))
    print(ranknet_loss(torch.randn(2, 8), docs, torch.arange(16).repeat(2, 1)))
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

INFONCE_TEMPERATURE = 0.03
RANKNET_SCALE = 10.0
EMBED_LOSS_FACTOR = 1.0
RANKNET_LOSS_FACTOR = 2.0


def info_nce_loss(
    query_embeddings: torch.Tensor,
    document_embeddings: torch.Tensor,
    positive_index: torch.Tensor,
    temperature: float = INFONCE_TEMPERATURE,
) -> torch.Tensor:
    """Cross-entropy over ``cosine / temperature`` of each query against every document in the batch.

    Args:
        query_embeddings: ``(B, d)`` retrieval-format query embeddings.
        document_embeddings: ``(B, K, d)``; query ``b``'s own list is row ``b``. The other ``K - 1`` documents of
            its list and all documents of the other queries are its negatives (in-batch, no cross-device).
        positive_index: ``(B,)`` position of the teacher's top document in each list.
        temperature: the softmax temperature (0.03 in the paper's recipe).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    batch, size, dim = document_embeddings.shape
    queries = F.normalize(query_embeddings, dim=-1)
    documents = F.normalize(document_embeddings.reshape(batch * size, dim), dim=-1)
    logits = queries @ documents.T / temperature
    targets = torch.arange(batch, device=logits.device) * size + positive_index.to(logits.device)
    return F.cross_entropy(logits, targets)


def anchor_loss(embeddings: torch.Tensor, base_embeddings: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cos`` between each embedding and the frozen base model's embedding of the same text.

    Args:
        embeddings: ``(n, d)`` embeddings of the model being trained.
        base_embeddings: ``(n, d)`` the base model's embeddings of the same inputs (no gradient flows into them).
    """
    if embeddings.shape != base_embeddings.shape:
        raise ValueError(f"shapes differ: {tuple(embeddings.shape)} vs {tuple(base_embeddings.shape)}")
    cosine = F.cosine_similarity(embeddings, base_embeddings.detach(), dim=-1)
    return (1.0 - cosine).mean()


def ranknet_loss(
    prompt_embeddings: torch.Tensor,
    document_embeddings: torch.Tensor,
    teacher_positions: torch.Tensor,
    scale: float = RANKNET_SCALE,
) -> torch.Tensor:
    """Mean of ``log(1 + exp(-(s_i - s_j)))`` over every pair the teacher orders i above j.

    ``s = scale * cosine(prompt, document)``. With a full permutation of ``K`` documents every list gives
    ``K (K - 1) / 2`` pairs (120 for 16 documents); the mean is over all pairs of the batch, unweighted.

    Args:
        prompt_embeddings: ``(B, d)`` listwise-prompt embeddings.
        document_embeddings: ``(B, K, d)``.
        teacher_positions: ``(B, K)`` 0-based teacher rank of each document (0 = best); relevance is
            ``K - position``, so a pair (i, j) counts when ``position_i < position_j``.
        scale: the score scale (``ranknet_scale_factor``, 10 in the paper's script).
    """
    scores = scale * torch.einsum(
        "bd,bkd->bk", F.normalize(prompt_embeddings, dim=-1), F.normalize(document_embeddings, dim=-1)
    )
    positions = teacher_positions.to(scores.device)
    differences = scores.unsqueeze(2) - scores.unsqueeze(1)  # [b, i, j] = s_i - s_j
    ordered = positions.unsqueeze(2) < positions.unsqueeze(1)  # i ranked above j by the teacher
    if not bool(ordered.any()):
        return scores.sum() * 0.0
    return F.softplus(-differences[ordered]).mean()


class E2RankLoss(nn.Module):
    """The E2Rank stage-2 loss as a sentence-transformers loss module.

    It receives the three feature groups made by :class:`~e2rank_core.training.trainer.E2RankDataCollator`
    (retrieval queries, listwise prompts, documents in teacher order) and the teacher positions as labels,
    and returns the weighted parts (the trainer sums them and logs each one).

    Example::

        from sentence_transformers import SentenceTransformer
        loss = E2RankLoss(SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2"))
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        temperature: float = INFONCE_TEMPERATURE,
        ranknet_scale: float = RANKNET_SCALE,
        embed_factor: float = EMBED_LOSS_FACTOR,
        ranknet_factor: float = RANKNET_LOSS_FACTOR,
        anchor_model: nn.Module | None = None,
        anchor_factor: float = 0.0,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if embed_factor < 0 or ranknet_factor < 0 or anchor_factor < 0:
            raise ValueError("embed_factor, ranknet_factor and anchor_factor must be >= 0")
        if anchor_factor > 0 and anchor_model is None:
            raise ValueError("anchor_factor > 0 needs an anchor_model (the frozen base)")
        self.model = model
        self.temperature = temperature
        self.ranknet_scale = ranknet_scale
        self.embed_factor = embed_factor
        self.ranknet_factor = ranknet_factor
        self.anchor_factor = anchor_factor
        # A plain attribute list, not a submodule: the frozen copy is neither trained nor saved with the model.
        self._anchor = [anchor_model.eval().requires_grad_(False)] if anchor_model is not None else []

    def forward(
        self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        features = list(sentence_features)
        if len(features) != 3 or labels is None:
            raise ValueError("E2RankLoss needs (query, prompt, document) features and teacher positions as labels")
        queries, prompts, documents = (self.model(f)["sentence_embedding"] for f in features)
        positions = labels.long()
        batch, size = positions.shape
        documents = documents.reshape(batch, size, -1)
        positive = positions.argmin(dim=1)
        parts = {
            "infonce": self.embed_factor * info_nce_loss(queries, documents, positive, self.temperature),
            "ranknet": self.ranknet_factor * ranknet_loss(prompts, documents, positions, self.ranknet_scale),
        }
        if self.anchor_factor > 0:
            anchor = self._anchor[0]
            with torch.no_grad():
                base_queries, base_documents = (anchor(f)["sentence_embedding"] for f in (features[0], features[2]))
            mine = torch.cat([queries, documents.reshape(batch * size, -1)])
            parts["anchor"] = self.anchor_factor * anchor_loss(mine, torch.cat([base_queries, base_documents]))
        return parts

    @property
    def citation(self) -> str:
        return "E2Rank (Liu et al., 2025), arXiv:2510.22733"
