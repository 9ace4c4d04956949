"""The E2Rank model: one embedding model used as a retriever and as a listwise reranker."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .backend import EmbeddingBackend
from .cache import EmbeddingCache
from .prompts import retrieval_query_text
from .resolve import resolve_model
from .scoring import RankedDocument, cosine_scores, l2_normalize, rank_by_score

EmbeddingsLike = np.ndarray | Sequence[Sequence[float]]


class E2RankModel:
    """An embedding model that retrieves and reranks (E2Rank, arXiv 2510.22733).

    Documents are embedded once; a rerank writes the query and its first ``num_input_docs`` candidates
    into one listwise prompt, embeds it, and scores every candidate by cosine similarity to it.

    Example::

        from e2rank_core import E2RankModel

        model = E2RankModel("e2rank/minilm-l6-e2rank")  # bundled with e2rank, offline
        docs = ["Paris is the capital of France.", "Berlin is in Germany.", "France borders Spain."]
        for hit in model.rerank("capital of France", docs, top_k=2):
            print(hit.index, round(hit.score, 3), hit.document)

        # Retrieval and reranking with one model: keep the document embeddings, rerank with one forward pass.
        doc_emb = model.embed_documents(docs)
        hits = model.rerank("capital of France", docs, document_embeddings=doc_emb)

    Args:
        model_name_or_path: a Hugging Face id (``Alibaba-NLP/E2Rank-0.6B``), a local folder or ``.gguf`` file,
            or an id shipped by an installed package (see ``e2rank_core.available_offline_models()``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``None`` picks the best available.
        dtype: ``"float32"``, ``"float16"``, ``"bfloat16"`` or a ``torch.dtype``; ``None`` keeps the checkpoint's
            on accelerators and uses float32 on the CPU.
        num_input_docs: how many candidates (in input order) go into the listwise prompt; the paper uses 20.
        batch_size: texts per forward pass.
        max_document_tokens: token budget of a document embedding (default: the model's limit, at most 8192;
            for sentence-transformers encoders, their ``max_seq_length``).
        max_query_tokens: token budget of a query.
        max_prompt_tokens: token budget of the listwise prompt (default: the model's position limit, at most
            32768). Over budget, documents in the prompt are shortened to an equal share so all still appear.
        window_size, stride: enable the sliding-window mode (RankGPT order, back to front): each window of
            ``window_size`` candidates gets its own prompt and is reordered within itself.
        cache_size: how many embeddings to keep in the LRU cache (0 disables it).
        trust_remote_code: allow custom model code from the checkpoint. Off unless you ask.
        token: a Hugging Face token for gated or private models.
        revision: a hub revision.
        model_kwargs, tokenizer_kwargs: passed to ``from_pretrained``.
        show_progress_bar: show a progress bar on long embedding work (default: when there are more than
            four batches).
        plain_queries: embed retrieval queries as the bare query text instead of the paper's
            ``Instruct: {task}\nQuery:{query}``; for embedders never trained with instructions (e.g. the base
            all-MiniLM-L6-v2). The listwise prompt is unaffected.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        num_input_docs: int = 20,
        batch_size: int = 32,
        max_document_tokens: int | None = None,
        max_query_tokens: int = 512,
        max_prompt_tokens: int | None = None,
        window_size: int | None = None,
        stride: int = 10,
        cache_size: int = 10_000,
        trust_remote_code: bool = False,
        token: str | None = None,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        show_progress_bar: bool | None = None,
        plain_queries: bool = False,
    ) -> None:
        _check_positive_int("num_input_docs", num_input_docs)
        _check_positive_int("batch_size", batch_size)
        if window_size is not None:
            _check_positive_int("window_size", window_size)
            _check_positive_int("stride", stride)
            if window_size < 2:
                raise ValueError(f"window_size must be at least 2, got {window_size}")
            if stride > window_size:
                raise ValueError(f"stride ({stride}) must not exceed window_size ({window_size})")
        self.model_name = os.fspath(model_name_or_path)
        self.num_input_docs = num_input_docs
        self.batch_size = batch_size
        self.window_size = window_size
        self.stride = stride
        self.show_progress_bar = show_progress_bar
        self.plain_queries = plain_queries
        resolved = resolve_model(self.model_name, revision=revision, token=token)
        self.backend = EmbeddingBackend(
            resolved,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            token=token,
            model_kwargs=model_kwargs,
            tokenizer_kwargs=tokenizer_kwargs,
            max_document_tokens=max_document_tokens,
            max_query_tokens=max_query_tokens,
            max_prompt_tokens=max_prompt_tokens,
        )
        self.cache = EmbeddingCache(cache_size)
        self._namespace = "|".join(
            [
                resolved.path,
                resolved.gguf_file or "",
                str(self.backend.st_model.dtype),
                str(self.backend.max_document_tokens),
                str(self.backend.max_query_tokens),
            ]
        )
        self._forward_lock = threading.Lock()  # one forward pass at a time; async adapters call from threads

    # ----------------------------------------------------------------------------------------- properties
    @property
    def dimension(self) -> int:
        """Size of every embedding this model produces."""
        return self.backend.dimension

    @property
    def is_decoder(self) -> bool:
        """True for decoder embedders (last-token pooling, EOS, chat template), False for encoders."""
        return self.backend.is_decoder

    @property
    def device(self) -> str:
        return self.backend.device

    def __repr__(self) -> str:
        family = "decoder" if self.is_decoder else "encoder"
        return (
            f"E2RankModel({self.model_name!r}, {family}, dim={self.dimension}, device={self.device!r}, "
            f"num_input_docs={self.num_input_docs})"
        )

    # ----------------------------------------------------------------------------------------- embedding
    def embed_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Embed documents (raw text + EOS for decoders): an ``(n, dimension)`` float32, L2-normalised array."""
        texts = _check_texts("texts", texts)
        return self._embed(texts, kind="document", batch_size=batch_size, show_progress_bar=show_progress_bar)

    def embed_queries(
        self,
        queries: Sequence[str],
        instruction: str | None = None,
        *,
        batch_size: int | None = None,
        plain: bool | None = None,
    ) -> np.ndarray:
        """Embed queries for retrieval, as ``Instruct: {instruction}\\nQuery:{query}`` (+ EOS for decoders).

        ``instruction=None`` uses the paper's default web-search task. ``plain=True`` embeds the bare query (for
        models never trained with instructions); ``None`` follows the model's ``plain_queries`` setting.
        """
        queries = _check_texts("queries", queries)
        if instruction is not None and not isinstance(instruction, str):
            raise TypeError(f"instruction must be a string or None, got {type(instruction).__name__}")
        plain = self.plain_queries if plain is None else plain
        formatted = [retrieval_query_text(q, instruction, plain=plain) for q in queries]
        return self._embed(formatted, kind="query", batch_size=batch_size, show_progress_bar=False)

    def _embed(
        self, texts: list[str], *, kind: str, batch_size: int | None, show_progress_bar: bool | None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        keys = [self.cache.key(f"{self._namespace}|{kind}", t) for t in texts]
        missing: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            cached = self.cache.get(key)
            if cached is None:
                missing.setdefault(key, []).append(i)
            else:
                out[i] = cached
        if missing:
            first_rows = [rows[0] for rows in missing.values()]
            encoded = self.backend.encode_texts([texts[i] for i in first_rows], kind=kind)
            vectors = self._forward([e.input_ids for e in encoded], batch_size, show_progress_bar)
            for (key, rows), vector in zip(missing.items(), vectors, strict=True):
                out[rows] = vector
                self.cache.put(key, vector)
        return out

    def _forward(
        self, sequences: list[list[int]], batch_size: int | None, show_progress_bar: bool | None
    ) -> np.ndarray:
        size = batch_size or self.batch_size
        if show_progress_bar is None:
            show_progress_bar = self.show_progress_bar
        if show_progress_bar is None:
            show_progress_bar = len(sequences) > 4 * size
        with self._forward_lock:
            return self.backend.embed_ids(sequences, batch_size=size, show_progress_bar=show_progress_bar)

    # ----------------------------------------------------------------------------------------- prompts
    def build_listwise_prompt(self, query: str, documents: Sequence[str]) -> str:
        """The exact text embedded as the listwise pseudo-query for ``query`` and these candidates.

        Uses the first ``num_input_docs`` documents in the given order, the eval.py template, the tokenizer's
        chat template when it has one (generation prompt on, thinking off), and the prompt token budget.
        """
        query = _check_query(query)
        documents = _check_texts("documents", documents)
        return self.backend.encode_prompt(query, documents[: self.num_input_docs]).text

    def embed_listwise_prompts(
        self, queries: Sequence[str], documents_per_query: Sequence[Sequence[str]], *, num_input_docs: int | None = None
    ) -> np.ndarray:
        """Embed one listwise prompt per query (batched forward passes): ``(len(queries), dimension)``."""
        k = self._num_input_docs(num_input_docs)
        encoded = [
            self.backend.encode_prompt(q, list(docs)[:k]) for q, docs in zip(queries, documents_per_query, strict=True)
        ]
        return self._forward([e.input_ids for e in encoded], None, False)

    # ----------------------------------------------------------------------------------------- reranking
    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_k: int | None = None,
        document_embeddings: EmbeddingsLike | None = None,
        num_input_docs: int | None = None,
    ) -> list[RankedDocument[str]]:
        """Rerank ``documents`` (first-stage order) for ``query``.

        All candidates are scored by cosine similarity to the embedding of one listwise prompt built from the
        first ``num_input_docs``; results are sorted by score (ties keep input order) and cut to ``top_k``.
        Pass ``document_embeddings`` (from :meth:`embed_documents`, e.g. kept from retrieval) to skip
        re-encoding: then the prompt's forward pass is all the model work.
        """
        return self.rerank_batch(
            [query],
            [documents],
            top_k=top_k,
            document_embeddings=None if document_embeddings is None else [document_embeddings],
            num_input_docs=num_input_docs,
        )[0]

    def rerank_batch(
        self,
        queries: Sequence[str],
        documents_per_query: Sequence[Sequence[str]],
        *,
        top_k: int | None = None,
        document_embeddings: Sequence[EmbeddingsLike | None] | None = None,
        num_input_docs: int | None = None,
    ) -> list[list[RankedDocument[str]]]:
        """Rerank many queries at once; documents and prompts are embedded in shared batches."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings, not a single string; use rerank() for one query")
        queries = [_check_query(q) for q in queries]
        if len(documents_per_query) != len(queries):
            raise ValueError(f"documents_per_query has {len(documents_per_query)} lists for {len(queries)} queries")
        doc_lists = [_check_texts("documents", docs) for docs in documents_per_query]
        _check_top_k(top_k)
        k = self._num_input_docs(num_input_docs)
        if document_embeddings is not None and len(document_embeddings) != len(queries):
            raise ValueError(f"document_embeddings has {len(document_embeddings)} entries for {len(queries)} queries")
        given = list(document_embeddings) if document_embeddings is not None else [None] * len(queries)
        doc_matrices: list[np.ndarray | None] = [
            None if emb is None else self.check_document_embeddings(emb, len(docs))
            for emb, docs in zip(given, doc_lists, strict=True)
        ]

        # Embed every document that came without a vector, all queries together (the cache dedupes).
        to_embed = [i for i, m in enumerate(doc_matrices) if m is None and doc_lists[i]]
        if to_embed:
            flat = [d for i in to_embed for d in doc_lists[i]]
            vectors = self.embed_documents(flat)
            start = 0
            for i in to_embed:
                doc_matrices[i] = vectors[start : start + len(doc_lists[i])]
                start += len(doc_lists[i])

        if self.window_size is not None:
            return [
                self._sliding_window(q, docs, m, top_k) if docs else []
                for q, docs, m in zip(queries, doc_lists, doc_matrices, strict=True)
            ]

        active = [i for i, docs in enumerate(doc_lists) if docs]
        prompts = self.embed_listwise_prompts(
            [queries[i] for i in active], [doc_lists[i] for i in active], num_input_docs=k
        )
        results: list[list[RankedDocument[str]]] = [[] for _ in queries]
        for row, i in enumerate(active):
            scores = cosine_scores(prompts[row], doc_matrices[i])  # type: ignore[arg-type]
            results[i] = rank_by_score(scores, doc_lists[i], top_k)
        return results

    def _sliding_window(
        self, query: str, documents: list[str], doc_matrix: np.ndarray | None, top_k: int | None
    ) -> list[RankedDocument[str]]:
        """RankGPT-style windows from the back of the list to the front; each reorders only itself."""
        assert self.window_size is not None and doc_matrix is not None
        order = list(range(len(documents)))
        scores = np.zeros(len(documents), dtype=np.float32)
        end = len(documents)
        start = max(0, end - self.window_size)
        while True:
            window = order[start:end]
            prompt = self.embed_listwise_prompts([query], [[documents[i] for i in window]], num_input_docs=len(window))[
                0
            ]
            window_scores = cosine_scores(prompt, doc_matrix[window])
            reordered = rank_by_score(window_scores, window)
            order[start:end] = [r.document for r in reordered]
            for r in reordered:
                scores[r.document] = r.score
            if start == 0:
                break
            end -= self.stride
            start = max(0, start - self.stride)
        if top_k is not None:
            order = order[:top_k]
        return [RankedDocument(index=i, score=float(scores[i]), document=documents[i]) for i in order]

    # ----------------------------------------------------------------------------------------- validation
    def check_document_embeddings(self, embeddings: EmbeddingsLike, n_documents: int) -> np.ndarray:
        """Validate embeddings passed in by a caller: ``(n_documents, dimension)``, finite; returns them normalised."""
        try:
            matrix = np.asarray(embeddings, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"document_embeddings must be a numeric matrix: {exc}") from exc
        if matrix.ndim != 2:
            raise ValueError(f"document_embeddings must be 2-D (n_documents, dimension), got shape {matrix.shape}")
        if matrix.shape[0] != n_documents:
            raise ValueError(f"document_embeddings has {matrix.shape[0]} rows for {n_documents} documents")
        if matrix.shape[1] != self.dimension:
            raise ValueError(
                f"document_embeddings have dimension {matrix.shape[1]}, but {self.model_name!r} produces "
                f"{self.dimension}-dimensional embeddings: they come from another model"
            )
        if not np.isfinite(matrix).all():
            raise ValueError("document_embeddings contain NaN or infinite values")
        return l2_normalize(matrix)

    def _num_input_docs(self, num_input_docs: int | None) -> int:
        if num_input_docs is None:
            return self.num_input_docs
        _check_positive_int("num_input_docs", num_input_docs)
        return num_input_docs


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None:
        _check_positive_int("top_k", top_k)


def _check_query(query: object) -> str:
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ValueError("query must be a non-empty string")
    return query


def _check_texts(name: str, texts: object) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    try:
        items = list(texts)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}") from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a string, got {type(item).__name__}")
    return items


_SHARED_MODELS: dict[tuple[Any, ...], E2RankModel] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(model_name_or_path: str, **kwargs: Any) -> E2RankModel:
    """One loaded :class:`E2RankModel` per (model, settings) in this process.

    The framework adapters call this, so a retriever-side embedder and a ranker that name the same model and
    settings share one copy of the weights (and its embedding cache) instead of loading it twice.
    """
    key = (str(model_name_or_path), tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    with _SHARED_LOCK:
        model = _SHARED_MODELS.get(key)
        if model is None:
            model = E2RankModel(model_name_or_path, **kwargs)
            _SHARED_MODELS[key] = model
        return model
