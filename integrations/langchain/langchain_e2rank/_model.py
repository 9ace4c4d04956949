"""Model loading shared by the LangChain compressor and embeddings."""

from __future__ import annotations

from e2rank_core import E2RankModel, shared_model


def load_model(model: str, device: str | None, dtype: str | None, trust_remote_code: bool) -> E2RankModel:
    """The process-wide E2RankModel for these settings: E2RankEmbeddings and E2RankRerank share one copy."""
    return shared_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
