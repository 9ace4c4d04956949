"""E2RankDocumentEmbedder: embeds documents as E2Rank does, so the ranker can reuse the vectors."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from haystack import Document, component
from haystack.utils import ComponentDevice, Secret
from haystack_integrations.common.e2rank import E2RankComponent, document_text
from haystack_integrations.common.e2rank.component import DEFAULT_TOKEN, check_documents, check_separator

from e2rank_core.settings import check_flag, check_meta_fields, check_top_k

logger = logging.getLogger(__name__)


@component
class E2RankDocumentEmbedder(E2RankComponent):
    """Write E2Rank document embeddings on copies of the documents.

    Usage::

        from haystack import Document
        from haystack_integrations.components.embedders.e2rank import E2RankDocumentEmbedder

        embedder = E2RankDocumentEmbedder(model="e2rank/minilm-l6-e2rank")
        docs = embedder.run(documents=[Document(content="Paris is the capital of France")])["documents"]

    Give it the same ``model``, ``meta_fields_to_embed`` and ``embedding_separator`` as the ``E2RankRanker`` so that
    ``E2RankRanker(use_document_embeddings=True)`` can reuse these vectors instead of re-encoding: both build the
    text the same way (present ``meta_fields_to_embed`` values, then the content, joined by ``embedding_separator``;
    ``content=None`` counts as the empty text). Vectors are L2-normalised lists of floats.

    Options of Haystack's ``SentenceTransformersDocumentEmbedder`` keep their meaning, so a YAML moves over:
    ``progress_bar``, ``prefix``/``suffix`` (around the text; give the ranker the same text if you reuse vectors)
    and ``normalize_embeddings`` (E2Rank vectors are always L2-normalised; ``False`` is accepted and logged).
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = DEFAULT_TOKEN,
        prefix: str = "",
        suffix: str = "",
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = True,
        dtype: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        backend: str = "torch",
    ) -> None:
        self._init_model_settings(model, device, token, dtype, model_kwargs, trust_remote_code, backend)
        self.prefix = check_separator(prefix)
        self.suffix = check_separator(suffix)
        self.meta_fields_to_embed = check_meta_fields("meta_fields_to_embed", meta_fields_to_embed)
        self.embedding_separator = check_separator(embedding_separator)
        self.batch_size = check_top_k("batch_size", batch_size)
        self.progress_bar = check_flag("progress_bar", progress_bar)
        self.normalize_embeddings = check_flag("normalize_embeddings", normalize_embeddings)
        if not self.normalize_embeddings:
            logger.warning("E2RankDocumentEmbedder: E2Rank vectors are always L2-normalised (normalize_embeddings)")

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed ``documents``; returns copies with ``embedding`` (a list of floats) set."""
        documents = check_documents(documents, "E2RankDocumentEmbedder (to embed a query use E2RankTextEmbedder)")
        if not documents:
            return {"documents": []}
        texts = [
            self.prefix + document_text(doc, self.meta_fields_to_embed, self.embedding_separator) + self.suffix
            for doc in documents
        ]
        vectors = self.e2rank_model.embed_documents(
            texts, batch_size=self.batch_size, show_progress_bar=self.progress_bar
        )
        return {
            "documents": [
                replace(doc, embedding=vector.tolist()) for doc, vector in zip(documents, vectors, strict=True)
            ]
        }

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Same as :meth:`run`, in a worker thread."""
        return await asyncio.to_thread(self.run, documents)
