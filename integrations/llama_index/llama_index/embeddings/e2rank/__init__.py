"""E2Rank embeddings for LlamaIndex: ``from llama_index.embeddings.e2rank import E2RankEmbedding``."""

from llama_index.embeddings.e2rank.base import E2RankEmbedding

__all__ = ["E2RankEmbedding"]
