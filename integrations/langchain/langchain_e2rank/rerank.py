"""E2RankRerank: a LangChain document compressor that reranks with E2Rank's listwise prompt embedding."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from copy import deepcopy
from functools import partial
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from e2rank_core import E2RankModel, default_model

from ._model import load_model


class E2RankRerank(BaseDocumentCompressor):
    """Rerank retrieved documents with E2Rank; use it in a ``ContextualCompressionRetriever`` or an LCEL chain.

    Usage::

        from langchain_core.documents import Document
        from langchain_e2rank import E2RankRerank

        reranker = E2RankRerank(model="sentence-transformers/all-MiniLM-L6-v2", top_n=2)
        docs = [Document("Berlin is in Germany"), Document("Paris is the capital of France")]
        best = reranker.compress_documents(docs, "capital of France")
        print(best[0].page_content, best[0].metadata["relevance_score"])

    Returns copies of the documents (``id`` kept, metadata deep-copied) best first, with the cosine score in
    ``metadata["relevance_score"]`` (a float in [-1, 1]); ``score_threshold`` (>=) applies before ``top_n``.
    Identical documents are ranked independently (equal scores, input order kept).

    Reusing embeddings: pass ``document_embeddings=`` (one vector per document, from the same model, e.g. kept
    from your vector store) to ``compress_documents``/``rerank``, or set ``embedding_metadata_key`` to read each
    document's vector from its metadata. Then the documents are not re-encoded: one forward pass per query.
    """

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    top_n: int | None = Field(default=3, description="documents to return; None returns all")
    num_input_docs: int = Field(default=20, description="candidates written into the listwise prompt")
    score_threshold: float | None = Field(default=None, description="drop documents scoring below this")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16")
    batch_size: int = Field(default=32, description="documents per forward pass")
    embedding_metadata_key: str | None = Field(default=None, description="metadata key holding document vectors")
    trust_remote_code: bool = False

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    _model: E2RankModel | None = PrivateAttr(default=None)

    @field_validator("top_n", "num_input_docs", "batch_size")
    @classmethod
    def _positive(cls, value: int | None, info: Any) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {value}")
        return value

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded model (loaded on first use, shared with E2RankEmbeddings of the same settings)."""
        if self._model is None:
            self._model = load_model(self.model, self.device, self.dtype, self.trust_remote_code)
        return self._model

    def rerank(
        self,
        documents: Sequence[Document | str],
        query: str,
        *,
        top_n: int | None = -1,
        document_embeddings: Sequence[Sequence[float]] | None = None,
    ) -> list[dict[str, Any]]:
        """The order only: ``[{"index": i, "relevance_score": s}, ...]`` best first.

        ``top_n=-1`` (default) uses the field; ``None`` returns all; ``score_threshold`` applies.
        """
        top_n = self.top_n if top_n == -1 else top_n
        if top_n is not None and top_n < 1:
            raise ValueError(f"top_n must be >= 1, got {top_n}")
        if not documents:
            return []
        texts = [doc.page_content if isinstance(doc, Document) else doc for doc in documents]
        embeddings = document_embeddings if document_embeddings is not None else self._metadata_embeddings(documents)
        model = self.e2rank_model
        if embeddings is None:
            embeddings = model.embed_documents(texts, batch_size=self.batch_size)
        hits = model.rerank(query, texts, document_embeddings=embeddings, num_input_docs=self.num_input_docs)
        ranked = [
            {"index": hit.index, "relevance_score": hit.score}
            for hit in hits
            if self.score_threshold is None or hit.score >= self.score_threshold
        ]
        return ranked if top_n is None else ranked[:top_n]

    def _metadata_embeddings(self, documents: Sequence[Document | str]) -> list[Any] | None:
        if self.embedding_metadata_key is None:
            return None
        vectors = [
            doc.metadata.get(self.embedding_metadata_key) if isinstance(doc, Document) else None for doc in documents
        ]
        return None if any(v is None for v in vectors) else vectors

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        document_embeddings: Sequence[Sequence[float]] | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``: copies, best first, ``metadata["relevance_score"]`` set."""
        ranked = self.rerank(documents, query, document_embeddings=document_embeddings)
        results = []
        for item in ranked:
            original = documents[item["index"]]
            metadata = deepcopy(original.metadata)
            metadata["relevance_score"] = float(item["relevance_score"])
            results.append(Document(page_content=original.page_content, metadata=metadata, id=original.id))
        return results

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        document_embeddings: Sequence[Sequence[float]] | None = None,
    ) -> Sequence[Document]:
        """Same as :meth:`compress_documents`, in a worker thread."""
        call = partial(self.compress_documents, documents, query, callbacks, document_embeddings=document_embeddings)
        return await asyncio.to_thread(call)
