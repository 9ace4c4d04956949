"""E2RankRanker: a Haystack 3 ranker that reranks with one embedding model's listwise prompt."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice, Secret

from e2rank_core import E2RankModel, default_model
from e2rank_core import scale_score as scale_cosine

from ._common import DEFAULT_TOKEN, check_positive, deserialize_common, document_text, load_model, serialize_common


@component
class E2RankRanker:
    """Rerank documents with E2Rank: the query and its first ``num_input_docs`` documents form one listwise prompt,
    whose embedding scores every document by cosine similarity.

    Usage::

        from haystack import Document
        from haystack_integrations.components.rankers.e2rank import E2RankRanker

        ranker = E2RankRanker(model="e2rank/minilm-l6-e2rank", top_k=2)
        docs = [Document(content="Berlin is in Germany"), Document(content="Paris is the capital of France")]
        print(ranker.run(query="capital of France", documents=docs)["documents"][0].content)

    In YAML: ``type: haystack_integrations.components.rankers.e2rank.ranker.E2RankRanker``.

    Scores are cosine similarities in [-1, 1]; ``scale_score=True`` maps them to [0, 1] with ``(s + 1) / 2``
    (monotonic, not a calibrated probability). ``score_threshold`` (>=) is applied to the written score, before
    ``top_k``. Input documents are never modified: the output holds copies (``dataclasses.replace``).

    Text of a document: the values of ``meta_fields_to_embed`` that are present (in that order), then the content,
    joined by ``embedding_separator`` (as in Haystack's ``SentenceTransformersSimilarityRanker``). A document with
    ``content=None`` (e.g. only a blob) is ranked as an empty text; it is kept and returned as given.

    Duplicates (same ``id``) are ranked once: at the position of the first occurrence (the listwise prompt keeps the
    first-stage order), using the copy with the highest incoming ``score`` (the first one on ties or no scores).

    With ``use_document_embeddings=True`` and **every** document carrying an ``embedding`` (e.g. written by
    ``E2RankDocumentEmbedder`` with the same ``model``, ``meta_fields_to_embed`` and ``embedding_separator``, and
    returned by a retriever with ``return_embedding=True``), documents are not re-encoded: the rerank is one
    forward pass, the listwise prompt. If any document lacks an embedding, all are encoded as usual. An embedding
    whose length differs from the model's dimension raises ``ValueError`` (it was made by another model). Only the
    dimension can be checked: reusing vectors from a different model of the same size silently gives bad scores.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = DEFAULT_TOKEN,
        top_k: int = 10,
        num_input_docs: int = 20,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        score_threshold: float | None = None,
        scale_score: bool = False,
        use_document_embeddings: bool = False,
        batch_size: int = 32,
        dtype: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        """Store the settings; the model is loaded by :meth:`warm_up` (or the first :meth:`run`).

        Args:
            model: a Hugging Face id, local folder or ``.gguf`` file; default ``e2rank_core.default_model()``
                (evaluated here, the resulting id is stored and serialized).
            device: where to run; ``None`` picks the best available (resolved here, like Haystack's rankers).
            token: Hugging Face token for gated models (resolved at warm-up).
            top_k: how many documents to return (> 0).
            num_input_docs: how many first-stage candidates enter the listwise prompt (the paper uses 20).
            meta_fields_to_embed, embedding_separator: meta values prepended to the content.
            score_threshold: drop documents whose (possibly scaled) score is below this.
            scale_score: map cosine [-1, 1] to [0, 1] with ``e2rank_core.scale_score``.
            use_document_embeddings: reuse ``Document.embedding`` instead of re-encoding (see the class docs).
            batch_size: documents per forward pass when encoding.
            dtype: ``"float32"``, ``"float16"``, ``"bfloat16"`` or ``None`` (float32 on the CPU).
            model_kwargs: passed to ``from_pretrained``.
            trust_remote_code: allow custom model code; off unless you need it.
        """
        check_positive("top_k", top_k)
        check_positive("num_input_docs", num_input_docs)
        check_positive("batch_size", batch_size)
        self.model = model or default_model()
        self.device = ComponentDevice.resolve_device(device)
        self.token = token
        self.top_k = top_k
        self.num_input_docs = num_input_docs
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator
        self.score_threshold = score_threshold
        self.scale_score = scale_score
        self.use_document_embeddings = use_document_embeddings
        self.batch_size = batch_size
        self.dtype = dtype
        self.model_kwargs = model_kwargs
        self.trust_remote_code = trust_remote_code
        self._model: E2RankModel | None = None

    def warm_up(self) -> None:
        """Load the model (once; later calls do nothing)."""
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
                "top_k": self.top_k,
                "num_input_docs": self.num_input_docs,
                "meta_fields_to_embed": self.meta_fields_to_embed,
                "embedding_separator": self.embedding_separator,
                "score_threshold": self.score_threshold,
                "scale_score": self.scale_score,
                "use_document_embeddings": self.use_document_embeddings,
                "batch_size": self.batch_size,
                "dtype": self.dtype,
                "model_kwargs": self.model_kwargs,
                "trust_remote_code": self.trust_remote_code,
            }
        )
        return default_to_dict(self, **params)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> E2RankRanker:
        return default_from_dict(cls, deserialize_common(data))

    @component.output_types(documents=list[Document])
    def run(
        self,
        *,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, list[Document]]:
        """Rerank ``documents`` for ``query``; returns copies with ``score`` set, best first.

        Arguments given here override the ones given at init for this call.
        """
        top_k = self.top_k if top_k is None else top_k
        check_positive("top_k", top_k)
        threshold = self.score_threshold if score_threshold is None else score_threshold
        scaled = self.scale_score if scale_score is None else scale_score
        if not documents:
            return {"documents": []}
        self.warm_up()
        assert self._model is not None
        unique = _deduplicate(documents)
        texts = [document_text(doc, self.meta_fields_to_embed, self.embedding_separator) for doc in unique]
        if self.use_document_embeddings and all(doc.embedding is not None for doc in unique):
            embeddings: Any = _document_embeddings(unique, self._model.dimension, self.model)
        else:
            embeddings = self._model.embed_documents(texts, batch_size=self.batch_size)
        ranked = self._model.rerank(query, texts, document_embeddings=embeddings, num_input_docs=self.num_input_docs)
        results: list[Document] = []
        for hit in ranked:
            score = scale_cosine(hit.score) if scaled else hit.score
            if threshold is not None and score < threshold:
                continue
            results.append(replace(unique[hit.index], score=score))
        return {"documents": results[:top_k]}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        *,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, list[Document]]:
        """Same as :meth:`run`, off the event loop (the model work runs in a worker thread)."""
        return await asyncio.to_thread(
            self.run,
            query=query,
            documents=documents,
            top_k=top_k,
            score_threshold=score_threshold,
            scale_score=scale_score,
        )


def _deduplicate(documents: list[Document]) -> list[Document]:
    """One document per id, at its first position (the prompt keeps first-stage order), the best-scored copy."""
    best: dict[str, Document] = {}
    order: list[str] = []
    for doc in documents:
        if not isinstance(doc, Document):
            raise TypeError(f"documents must be a list of haystack Document objects, got {type(doc).__name__}")
        kept = best.get(doc.id)
        if kept is None:
            order.append(doc.id)
            best[doc.id] = doc
        elif doc.score is not None and (kept.score is None or doc.score > kept.score):
            best[doc.id] = doc
    return [best[doc_id] for doc_id in order]


def _document_embeddings(documents: list[Document], dimension: int, model: str) -> list[list[float]]:
    """The documents' own embeddings, after checking each has the model's dimension (the core checks the rest)."""
    for doc in documents:
        assert doc.embedding is not None
        if len(doc.embedding) != dimension:
            raise ValueError(
                f"use_document_embeddings=True, but Document {doc.id!r} has an embedding of dimension "
                f"{len(doc.embedding)} while {model!r} produces {dimension}-dimensional embeddings: embed the "
                "documents with E2RankDocumentEmbedder and the same model, or set use_document_embeddings=False"
            )
    return [doc.embedding for doc in documents]  # type: ignore[misc]
