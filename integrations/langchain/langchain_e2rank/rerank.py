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
from pydantic import ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator

from e2rank_core import E2RankModel, default_model

from ._model import LoadsSharedModel

Vectors = Sequence[Sequence[float]] | np.ndarray


class E2RankRerank(LoadsSharedModel, BaseDocumentCompressor):
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

    How it scores: the query and the first ``num_input_docs`` candidates (in the order given, i.e. the
    retriever's) are written into one listwise prompt; every candidate is scored by the cosine similarity of its
    embedding to the prompt's embedding (``E2RankModel.rerank``).

    Output: copies of the documents (``id`` kept, metadata deep-copied, inputs never modified), best first
    (ties keep the input order), with the cosine score in ``metadata["relevance_score"]`` (a plain float in
    [-1, 1]; ``e2rank_core.scale_score`` maps it to [0, 1]). ``score_threshold`` (kept if ``>=``) applies before
    ``top_n``. Duplicate documents are each ranked (equal scores). No documents -> ``[]``.

    Reusing document embeddings (retriever and reranker are one model, so retrieval vectors can be reused;
    they must come from the same model, e.g. ``E2RankEmbeddings(model=...).embed_documents``):

    * ``compress_documents(docs, query, document_embeddings=vectors)`` (or ``rerank(...)``): one vector per
      document, in order; they take precedence over ``embedding_metadata_key``.
    * ``embedding_metadata_key="embedding"`` reads each document's vector from ``doc.metadata["embedding"]``;
      documents without that key are embedded, the others are not.

    Reused vectors are not re-encoded, so the reranker's model work is one forward pass (the prompt). A vector of
    the wrong dimension raises ``ValueError``.
    """

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    top_n: int | None = Field(default=3, description="documents to return; None returns all")
    num_input_docs: int = Field(default=20, description="candidates written into the listwise prompt")
    score_threshold: float | None = Field(default=None, description="drop documents scoring below this cosine")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float32 on CPU")
    batch_size: int = Field(default=32, description="documents per forward pass")
    embedding_metadata_key: str | None = Field(default=None, description="metadata key holding document vectors")
    trust_remote_code: bool = Field(default=False, description="allow custom model code from the checkpoint")

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    _model: E2RankModel | None = PrivateAttr(default=None)
    _model_key: tuple[Any, ...] | None = PrivateAttr(default=None)

    @field_validator("top_n", "num_input_docs", "batch_size")
    @classmethod
    def _positive(cls, value: int | None, info: ValidationInfo) -> int | None:
        _check_positive(str(info.field_name), value)
        return value

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
        field (``None`` returns all); ``score_threshold`` and the reuse options apply as in
        :meth:`compress_documents`.

        Example::

            texts = ["Berlin is in Germany", "Paris is the capital of France"]
            order = E2RankRerank(top_n=None).rerank(texts, "French capital")
            best_text = texts[order[0]["index"]]
        """
        top_n = self.top_n if top_n is ... else top_n
        _check_positive("top_n", top_n)
        docs = list(documents)
        texts = []
        for i, doc in enumerate(docs):
            if isinstance(doc, Document):
                texts.append(doc.page_content)
            elif isinstance(doc, str):
                texts.append(doc)
            else:
                raise TypeError(f"documents[{i}] must be a Document or a str, got {type(doc).__name__}")
        if not texts:
            return []
        model = self.e2rank_model
        embeddings = document_embeddings
        if embeddings is None:
            embeddings = self._metadata_embeddings(docs, texts, model)
        if embeddings is None:
            embeddings = model.embed_documents(texts, batch_size=self.batch_size)
        hits = model.rerank(query, texts, document_embeddings=embeddings, num_input_docs=self.num_input_docs)
        ranked = [
            {"index": hit.index, "relevance_score": float(hit.score)}
            for hit in hits
            if self.score_threshold is None or hit.score >= self.score_threshold
        ]
        return ranked if top_n is None else ranked[:top_n]

    def _metadata_embeddings(
        self, docs: list[Document | str], texts: list[str], model: E2RankModel
    ) -> list[Any] | None:
        """Vectors from ``metadata[embedding_metadata_key]``; documents without one are embedded here."""
        key = self.embedding_metadata_key
        if key is None:
            return None
        rows: list[Any] = [doc.metadata.get(key) if isinstance(doc, Document) else None for doc in docs]
        missing = [i for i, row in enumerate(rows) if row is None]
        if len(missing) == len(rows):
            return None
        for i, row in enumerate(rows):
            if row is None:
                continue
            size = np.asarray(row).size if isinstance(row, Sequence | np.ndarray) else -1
            if size != model.dimension:
                raise ValueError(
                    f"documents[{i}].metadata[{key!r}] is not a {model.dimension}-dimensional vector "
                    f"(the dimension of {model.model_name!r}); got {type(row).__name__} of size {size}"
                )
        if missing:
            computed = model.embed_documents([texts[i] for i in missing], batch_size=self.batch_size)
            for i, vector in zip(missing, computed, strict=True):
                rows[i] = vector
        return rows

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        document_embeddings: Vectors | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``: copies, best first, ``metadata["relevance_score"]`` set.

        ``document_embeddings`` (optional): one vector per document from the same model; they are used
        instead of embedding the documents.
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


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
