"""E2Rank embedders for Haystack (the retriever side of the same model that reranks)."""

from .document_embedder import E2RankDocumentEmbedder
from .text_embedder import E2RankTextEmbedder

__all__ = ["E2RankDocumentEmbedder", "E2RankTextEmbedder"]
