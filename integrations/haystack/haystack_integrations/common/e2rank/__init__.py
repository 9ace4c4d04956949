"""What the E2Rank ranker and embedders for Haystack share (the haystack-core-integrations ``common`` convention)."""

from .component import E2RankComponent, document_text

__all__ = ["E2RankComponent", "document_text"]
