"""E2RankRanker: a Haystack 3 ranker that reranks with one embedding model's listwise prompt."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from haystack import Document, component
from haystack.utils import ComponentDevice, Secret
from haystack_integrations.common.e2rank import E2RankComponent, document_text
from haystack_integrations.common.e2rank.component import DEFAULT_TOKEN, check_documents, check_separator

from e2rank_core.rocchio import check_optional_query_weight
from e2rank_core.settings import check_flag, check_meta_fields, check_threshold, check_top_k
from e2rank_core.validation import check_optional_positive_int


@component
class E2RankRanker(E2RankComponent):
    """Rerank documents with E2Rank: the query and ``num_input_docs`` documents form one listwise prompt, whose
    embedding scores every document by cosine similarity.

    Usage::

        from haystack import Document
        from haystack_integrations.components.rankers.e2rank import E2RankRanker

        ranker = E2RankRanker(model="e2rank/minilm-l6-e2rank", top_k=2)
        docs = [Document(content="Berlin is in Germany"), Document(content="Paris is the capital of France")]
        print(ranker.run(query="capital of France", documents=docs)["documents"][0].content)

    In YAML: ``type: haystack_integrations.components.rankers.e2rank.ranker.E2RankRanker``.

    The rules are the core's (``E2RankModel.rerank``), the same in every framework:

    * the prompt holds the ``num_input_docs`` best documents by incoming ``Document.score`` (e.g. from a retriever or
      a ``DocumentJoiner``); documents without a score follow in arrival order;
    * scores are cosines in [-1, 1]; ``scale_score=True`` writes ``(s + 1) / 2`` in [0, 1] (monotonic, not a
      probability); ``score_threshold`` (>=) applies to the written score, before ``top_k``;
    * duplicates (same ``id``) are ranked once, as the copy with the highest incoming score;
    * ``use_document_embeddings=True`` reuses each ``Document.embedding`` that is set (from ``E2RankDocumentEmbedder``
      with the same ``model``, ``meta_fields_to_embed`` and ``embedding_separator``) and encodes the others; a vector
      of the wrong size raises ``ValueError``. Only the size can be checked: vectors from another model of the same
      size silently give bad scores.

    Text of a document: the values of ``meta_fields_to_embed`` that are present (in that order), then the content,
    joined by ``embedding_separator`` (as in Haystack's ``SentenceTransformersSimilarityRanker``); ``content=None``
    counts as an empty text. Input documents are never modified: the output holds copies.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = DEFAULT_TOKEN,
        top_k: int = 10,
        num_input_docs: int | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        score_threshold: float | None = None,
        scale_score: bool = False,
        use_document_embeddings: bool = False,
        window_size: int | None = None,
        stride: int = 10,
        batch_size: int = 32,
        dtype: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        backend: str = "torch",
        query_weight: float | None = None,
    ) -> None:
        """Check and store the settings; the model is loaded by :meth:`warm_up` (or the first :meth:`run`).

        Args:
            model: a Hugging Face id, local folder or ``.gguf`` file; default ``e2rank_core.default_model()``
                (evaluated here, the resulting id is stored and serialized).
            device: where to run; ``None`` picks the best available (resolved here, like Haystack's rankers).
            token: Hugging Face token for gated models (resolved at warm-up).
            top_k: how many documents to return (> 0).
            num_input_docs: how many candidates enter the listwise prompt (> 0); ``None`` (default): the model's
                (20 unless its ``e2rank_config.json`` stores another).
            meta_fields_to_embed, embedding_separator: meta values prepended to the content.
            score_threshold: drop documents whose written (possibly scaled) score is below this.
            scale_score: map cosine [-1, 1] to [0, 1] with ``e2rank_core.scale_score``.
            use_document_embeddings: reuse ``Document.embedding`` where set instead of re-encoding.
            window_size, stride: RankGPT-style sliding windows instead of one prompt (``None``: one prompt).
            batch_size: documents per forward pass when encoding.
            dtype: ``"float32"``, ``"float16"``, ``"bfloat16"`` or ``None`` (float32 on the CPU).
            model_kwargs: passed to ``from_pretrained``.
            trust_remote_code: allow custom model code; off unless you need it.
            backend: the forward pass: ``"torch"``, or on the CPU ``"onnx"``, ``"openvino"`` (and their ``-int8``
                variants) for encoder models; see ``e2rank_core.runtimes``.
            query_weight: score by cosine to ``normalize(p + query_weight * q)``, the prompt embedding with the
                query's own embedding added back (>= 0; 0 is the paper's score, see ``e2rank_core.rocchio``);
                ``None`` (default): the model's (0 unless its ``e2rank_config.json`` stores another).
        """
        self._init_model_settings(model, device, token, dtype, model_kwargs, trust_remote_code, backend)
        self.top_k = check_top_k("top_k", top_k)
        self.num_input_docs = check_optional_positive_int("num_input_docs", num_input_docs)
        self.meta_fields_to_embed = check_meta_fields("meta_fields_to_embed", meta_fields_to_embed)
        self.embedding_separator = check_separator(embedding_separator)
        self.score_threshold = check_threshold("score_threshold", score_threshold)
        self.scale_score = check_flag("scale_score", scale_score)
        self.use_document_embeddings = check_flag("use_document_embeddings", use_document_embeddings)
        self.window_size = check_optional_positive_int("window_size", window_size)
        self.stride = check_top_k("stride", stride)
        self.batch_size = check_top_k("batch_size", batch_size)
        self.query_weight = check_optional_query_weight(query_weight)

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
        documents = check_documents(documents, "E2RankRanker")
        top_k = check_top_k("top_k", self.top_k if top_k is None else top_k)
        if not documents:
            return {"documents": []}
        hits = self.e2rank_model.rerank(
            query,
            [document_text(doc, self.meta_fields_to_embed, self.embedding_separator) for doc in documents],
            document_embeddings=[doc.embedding if self.use_document_embeddings else None for doc in documents],
            first_stage_scores=[doc.score for doc in documents],
            ids=[doc.id for doc in documents],
            deduplicate=True,
            top_k=top_k,
            score_threshold=self.score_threshold if score_threshold is None else score_threshold,
            scale_score=self.scale_score if scale_score is None else scale_score,
            num_input_docs=self.num_input_docs,
            window_size=self.window_size,
            stride=self.stride,
            batch_size=self.batch_size,
            query_weight=self.query_weight,
        )
        return {"documents": [replace(documents[hit.index], score=hit.score) for hit in hits]}

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
