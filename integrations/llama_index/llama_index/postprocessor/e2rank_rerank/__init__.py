"""E2Rank node postprocessor: ``from llama_index.postprocessor.e2rank_rerank import E2RankRerank``."""

from llama_index.postprocessor.e2rank_rerank.base import E2RankRerank

__all__ = ["E2RankRerank"]
