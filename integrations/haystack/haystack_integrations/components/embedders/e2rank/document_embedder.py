"""E2RankDocumentEmbedder: embeds documents as E2Rank does, so the ranker can reuse the vectors."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice, Secret
from haystack_integrations.components.rankers.e2rank._common import (
    DEFAULT_TOKEN,
    check_positive,
    deserialize_common,
    document_text,
    load_model,
    serialize_common,
)

from e2rank_core import E2RankModel, default_model


@component
class E2RankDocumentEmbedder:
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
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = DEFAULT_TOKEN,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        batch_size: int = 32,
        progress_bar: bool = True,
        dtype: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        check_positive("batch_size", batch_size)
        self.model = model or default_model()
        self.device = ComponentDevice.resolve_device(device)
        self.token = token
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator
        self.batch_size = batch_size
        self.progress_bar = progress_bar
        self.dtype = dtype
        self.model_kwargs = model_kwargs
        self.trust_remote_code = trust_remote_code
        self._model: E2RankModel | None = None

    def warm_up(self) -> None:
        """Load the model (once)."""
        if self._model is None:
            self._model = load_model(
                self.model, self.device, self.token, self.dtype, self.trust_remote_code, self.model_kwargs
            )

    def _get_telemetry_data(self) -> dict[str, Any]:
        return {"model": self.model}

    def to_dict(self) -> dict[str, Any]:
        params = serialize_common(
            {
                "model": self.model,
                "device": self.device,
                "token": self.token,
                "meta_fields_to_embed": self.meta_fields_to_embed,
                "embedding_separator": self.embedding_separator,
                "batch_size": self.batch_size,
                "progress_bar": self.progress_bar,
                "dtype": self.dtype,
                "model_kwargs": self.model_kwargs,
                "trust_remote_code": self.trust_remote_code,
            }
        )
        return default_to_dict(self, **params)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> E2RankDocumentEmbedder:
        return default_from_dict(cls, deserialize_common(data))

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed ``documents``; returns copies with ``embedding`` (a list of floats) set."""
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise TypeError(
                "E2RankDocumentEmbedder expects a list of Documents; to embed a query use E2RankTextEmbedder"
            )
        if not documents:
            return {"documents": []}
        self.warm_up()
        assert self._model is not None
        texts = [document_text(doc, self.meta_fields_to_embed, self.embedding_separator) for doc in documents]
        vectors = self._model.embed_documents(texts, batch_size=self.batch_size, show_progress_bar=self.progress_bar)
        return {
            "documents": [
                replace(doc, embedding=vector.tolist()) for doc, vector in zip(documents, vectors, strict=True)
            ]
        }

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Same as :meth:`run`, in a worker thread."""
        return await asyncio.to_thread(self.run, documents)
