"""e2rank: one text-embedding model as retriever and listwise reranker (E2Rank, arXiv 2510.22733)."""

from .model import E2RankModel, shared_model
from .prompts import listwise_prompt_content, retrieval_query_text
from .resolve import ModelNotAvailableError, available_offline_models, default_model
from .scoring import RankedDocument, scale_score

__version__ = "0.1.0"

__all__ = [
    "E2RankModel",
    "ModelNotAvailableError",
    "RankedDocument",
    "__version__",
    "available_offline_models",
    "default_model",
    "listwise_prompt_content",
    "retrieval_query_text",
    "scale_score",
    "shared_model",
]
