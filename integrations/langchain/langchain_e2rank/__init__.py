"""LangChain integration of E2Rank: ``from langchain_e2rank import E2RankRerank, E2RankEmbeddings``."""

from .embeddings import E2RankEmbeddings
from .rerank import E2RankRerank

__all__ = ["E2RankEmbeddings", "E2RankRerank"]
