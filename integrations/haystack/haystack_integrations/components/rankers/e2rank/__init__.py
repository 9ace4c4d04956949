"""E2Rank ranker for Haystack: ``from haystack_integrations.components.rankers.e2rank import E2RankRanker``."""

from .ranker import E2RankRanker

__all__ = ["E2RankRanker"]
