"""E2RankRerank: a LangChain document compressor that reranks with E2Rank's listwise prompt embedding."""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from types import EllipsisType
from typing import Any

import numpy as np
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables.config import run_in_executor
from pydantic import Field

from e2rank_core.pydantic_fields import E2RankRerankFields
from e2rank_core.validation import check_optional_positive_int

Vectors = Sequence[Sequence[float] | None] | np.ndarray

#: Metadata keys read as a document's first-stage score, in this order (retrievers and ensembles that write one).
FIRST_STAGE_SCORE_KEYS = ("score", "relevance_score", "similarity_score")


class E2RankRerank(E2RankRerankFields, BaseDocumentCompressor):
    """Rerank retrieved documents with E2Rank; use it in a ``ContextualCompressionRetriever`` or an LCEL chain.

    Usage::

        from langchain_classic.retrievers import ContextualCompressionRetriever
        from langchain_core.documents import Document
        from langchain_e2rank import E2RankRerank

        reranker = E2RankRerank(model="e2rank/minilm-l6-e2rank", top_n=2)
        docs = [Document("Berlin is in Germany"), Document("Paris is the capital of France")]
        best = reranker.compress_documents(docs, "capital of France")
        print(best[0].page_content, best[0].metadata["relevance_score"])

        retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=store.as_retriever())

    The rules are the core's (``E2RankModel.rerank``), the same in every framework:

    * the prompt holds the ``num_input_docs`` best documents by a first-stage score found in their metadata
      (``first_stage_score_key``, default: the first of ``score``, ``relevance_score``, ``similarity_score`` that is
      present); documents without one follow in arrival order;
    * every document is scored by cosine to the prompt embedding, in [-1, 1], or ``(s + 1) / 2`` with
      ``scale_score=True``, written to ``metadata["relevance_score"]``; ``score_threshold`` (>=) applies to that
      score, before ``top_n``;
    * duplicates (same ``id``, or same text when a document has no id) are ranked once;
    * reuse of stored vectors: ``compress_documents(docs, query, document_embeddings=vectors)`` (one vector or
      ``None`` per document) or ``embedding_metadata_key="embedding"`` (the vector in each document's metadata);
      given vectors are not re-encoded, missing ones are; a vector of the wrong size raises ``ValueError``.

    Output: copies of the documents (``id`` kept, metadata deep-copied, inputs never modified), best first.
    """

    top_n: int | None = Field(default=3, description="documents to return; None returns all")
    embedding_metadata_key: str | None = Field(default=None, description="metadata key holding document vectors")
    first_stage_score_key: str | None = Field(default=None, description="metadata key of the first-stage score")

    def rerank(
        self,
        documents: Sequence[Document | str],
        query: str,
        *,
        top_n: int | EllipsisType | None = ...,
        document_embeddings: Vectors | None = None,
    ) -> list[dict[str, Any]]:
        """The order only: ``[{"index": i, "relevance_score": s}, ...]``, best first.

        ``index`` points into ``documents`` (``Document`` objects or plain strings). ``top_n`` defaults to the
        field (``None`` returns all).

        Example::

            texts = ["Berlin is in Germany", "Paris is the capital of France"]
            order = E2RankRerank(top_n=None).rerank(texts, "French capital")
            best_text = texts[order[0]["index"]]
        """
        top_n = check_optional_positive_int("top_n", self.top_n if top_n is ... else top_n)
        docs = list(documents)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document | str):
                raise TypeError(f"documents[{i}] must be a Document or a str, got {type(doc).__name__}")
        if not docs:
            return []
        texts = [doc.page_content if isinstance(doc, Document) else doc for doc in docs]
        hits = self.e2rank_model.rerank(
            query,
            texts,
            document_embeddings=document_embeddings if document_embeddings is not None else self._stored(docs),
            first_stage_scores=[self._first_stage_score(doc) for doc in docs],
            ids=[
                doc.id if isinstance(doc, Document) and doc.id is not None else ("text", t)
                for doc, t in zip(docs, texts, strict=True)
            ],
            top_k=top_n,
            **self.core_options(),
        )
        return [{"index": hit.index, "relevance_score": float(hit.score)} for hit in hits]

    def _stored(self, docs: list[Document | str]) -> list[Any] | None:
        key = self.embedding_metadata_key
        if key is None:
            return None
        return [doc.metadata.get(key) if isinstance(doc, Document) else None for doc in docs]

    def _first_stage_score(self, doc: Document | str) -> Any:
        if not isinstance(doc, Document):
            return None
        keys = (self.first_stage_score_key,) if self.first_stage_score_key else FIRST_STAGE_SCORE_KEYS
        return next((doc.metadata[k] for k in keys if doc.metadata.get(k) is not None), None)

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        document_embeddings: Vectors | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``: copies, best first, ``metadata["relevance_score"]`` set.

        ``document_embeddings`` (optional): one vector (or ``None``) per document from the same model; given ones
        are used instead of embedding the documents.
        """
        docs = list(documents)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise TypeError(f"documents[{i}] must be a langchain_core Document, got {type(doc).__name__}")
        results = []
        for item in self.rerank(docs, query, document_embeddings=document_embeddings):
            original = docs[item["index"]]
            metadata = deepcopy(original.metadata)
            metadata["relevance_score"] = item["relevance_score"]
            results.append(Document(page_content=original.page_content, metadata=metadata, id=original.id))
        return results

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        document_embeddings: Vectors | None = None,
    ) -> Sequence[Document]:
        """Same as :meth:`compress_documents`, run in a worker thread (the event loop stays free)."""

        def call() -> Sequence[Document]:
            return self.compress_documents(documents, query, callbacks, document_embeddings=document_embeddings)

        return await run_in_executor(None, call)
