"""The E2Rank model: one embedding model used as a retriever and as a listwise reranker."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .backend import EmbeddingBackend
from .cache import EmbeddingCache
from .model_config import read_stored_settings
from .prompts import retrieval_query_text
from .resolve import resolve_model
from .rocchio import check_query_weight, combine_query_embedding
from .scoring import RankedDocument, cosine_scores, l2_normalize, rank_by_score, scale_score
from .validation import (
    check_bool,
    check_first_stage_scores,
    check_optional_float,
    check_optional_positive_int,
    check_positive_int,
    check_query,
    check_texts,
    check_vector,
)

#: Caller-given document vectors: an ``(n, dimension)`` matrix, or one vector or ``None`` (encode it) per document.
EmbeddingsLike = np.ndarray | Sequence[Sequence[float] | np.ndarray | None]

#: The query prompt that marks a sentence-transformers model as trained with E2Rank's retrieval format.
INSTRUCT_PROMPT_MARKER = "Instruct:"


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
        dtype: ``"float32"``, ``"float16"``, ``"bfloat16"``, ``"float64"`` or a ``torch.dtype``; ``None`` keeps the
            checkpoint's on accelerators and uses float32 on the CPU. ``"float64"`` is the exact mode: a text's
            vector (rounded to float32) no longer depends on what it was batched with, so cached, uncached and
            batched runs rank identically, at about twice the CPU time. In float32 such differences stay below
            1e-6 and can only swap documents whose scores tie to that precision.
        num_input_docs: how many candidates (in input order) go into the listwise prompt; the paper uses 20.
            ``None`` (default) reads the number the model stores in its ``e2rank_config.json``
            (:mod:`e2rank_core.model_config`), else 20.
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
        plain_queries: embed retrieval queries as the bare query text (``True``) or in the paper's
            ``Instruct: {task}\nQuery:{query}`` format (``False``). ``None`` (default) follows the model: decoders
            (E2Rank's own) and models whose sentence-transformers ``prompts["query"]`` starts with ``Instruct:``
            (what ``e2rank train`` writes) get the instruction; other embedders (e.g. the base all-MiniLM-L6-v2) get
            the bare query. The listwise prompt is unaffected.
        backend: the forward pass: ``"torch"`` (default), or for encoder models on the CPU ``"onnx"``,
            ``"openvino"`` (float32 exports, same rankings) and ``"onnx-int8"``, ``"openvino-int8"`` (int8, faster,
            slightly different scores). Exported once, then cached (``$E2RANK_CACHE``, default ``~/.cache/e2rank``);
            see :mod:`e2rank_core.runtimes`. Decoder and GGUF models with a non-torch backend are a ``ValueError``.
            ``dtype="bfloat16"`` with an OpenVINO backend computes in bfloat16 on CPUs that have it (AVX-512 BF16,
            AMX; the fastest close-to-float32 option there), float32 with a warning elsewhere.
        query_weight: beyond the paper, score by cosine to ``normalize(p + query_weight * q)``, the listwise prompt
            embedding ``p`` with the query's own retrieval embedding ``q`` added back (Rocchio-style; see
            :mod:`e2rank_core.rocchio`); costs one short query forward pass, cached. ``0`` is the paper's score.
            ``None`` (default) reads the weight the model stores in its ``e2rank_config.json``, else 0.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        num_input_docs: int | None = None,
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
        plain_queries: bool | None = None,
        backend: str | None = None,
        query_weight: float | None = None,
    ) -> None:
        if num_input_docs is not None:
            num_input_docs = check_positive_int("num_input_docs", num_input_docs)
        batch_size = check_positive_int("batch_size", batch_size)
        if plain_queries is not None:
            plain_queries = check_bool("plain_queries", plain_queries)
        trust_remote_code = check_bool("trust_remote_code", trust_remote_code)
        if isinstance(model_name_or_path, str) and not model_name_or_path.strip():
            raise ValueError("model_name_or_path must be a non-empty model id or path")
        _check_window(window_size, stride)
        self.model_name = os.fspath(model_name_or_path)
        self.batch_size = batch_size
        self.window_size = window_size
        self.stride = stride
        self.show_progress_bar = show_progress_bar
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
            backend=backend,
        )
        self.plain_queries: bool = self._follows_plain_queries() if plain_queries is None else plain_queries
        stored = read_stored_settings(resolved.path)
        self.num_input_docs: int = stored.num_input_docs if num_input_docs is None else num_input_docs
        self.query_weight: float = stored.query_weight if query_weight is None else check_query_weight(query_weight)
        self.cache = EmbeddingCache(cache_size)
        self.encoded_texts = 0  # sequences through the forward pass since load: proves reuse in tests and benchmarks
        self._namespace = "|".join(
            [
                resolved.path,
                resolved.gguf_file or "",
                str(self.backend.dtype),
                self.backend.backend_name,
                str(self.backend.runtime_dtype or ""),
                str(self.backend.max_document_tokens),
                str(self.backend.max_query_tokens),
            ]
        )
        self._forward_lock = threading.Lock()  # one forward pass at a time; async adapters call from threads

    def _follows_plain_queries(self) -> bool:
        """Whether the model wants bare retrieval queries, read from the model itself (see ``plain_queries``)."""
        if self.backend.is_decoder:
            return False
        prompts = self.backend.prompts
        return not str(prompts.get("query", "")).startswith(INSTRUCT_PROMPT_MARKER)

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

    @property
    def backend_name(self) -> str:
        """The forward pass in use: ``torch``, ``onnx``, ``onnx-int8``, ``openvino`` or ``openvino-int8``."""
        return self.backend.backend_name

    def __repr__(self) -> str:
        family = "decoder" if self.is_decoder else "encoder"
        return (
            f"E2RankModel({self.model_name!r}, {family}, dim={self.dimension}, device={self.device!r}, "
            f"num_input_docs={self.num_input_docs}"
            + (f", query_weight={self.query_weight:g}" if self.query_weight else "")
            + (f", backend={self.backend_name!r})" if self.backend_name != "torch" else ")")
        )

    # ----------------------------------------------------------------------------------------- embedding
    def embed_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Embed documents (raw text + EOS for decoders): an ``(n, dimension)`` float32, L2-normalised array."""
        texts = check_texts("texts", texts)
        batch_size = check_optional_positive_int("batch_size", batch_size)  # one rule, cached or not
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
        queries = check_texts("queries", queries)
        batch_size = check_optional_positive_int("batch_size", batch_size)
        if instruction is not None and not isinstance(instruction, str):
            raise TypeError(f"instruction must be a string or None, got {type(instruction).__name__}")
        plain = self.plain_queries if plain is None else check_bool("plain", plain)
        formatted = [retrieval_query_text(q, instruction, plain=plain) for q in queries]
        return self._embed(formatted, kind="query", batch_size=batch_size, show_progress_bar=False)

    def _embed(
        self, texts: list[str], *, kind: str, batch_size: int | None, show_progress_bar: bool | None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        namespace = f"{self._namespace}|{kind}"
        missing: dict[bytes, list[int]] = {}  # text key -> rows holding that text
        for i, text in enumerate(texts):
            key = self.cache.key(namespace, text)
            cached = self.cache.get(key)
            if cached is None:
                missing.setdefault(key, []).append(i)
            else:
                out[i] = cached
        if not missing:
            return out
        text_keys = list(missing)
        encoded = self.backend.encode_texts([texts[missing[k][0]] for k in text_keys], kind=kind)
        # One vector per distinct token sequence: texts that tokenise alike ("" and " \t", or two documents equal
        # after truncation) share a forward row and a cache entry, so they tie exactly and keep the input order.
        by_ids: dict[bytes, tuple[list[int], list[bytes]]] = {}
        for text_key, item in zip(text_keys, encoded, strict=True):
            ids_key = self.cache.key(f"{namespace}|ids", ",".join(map(str, item.input_ids)))
            by_ids.setdefault(ids_key, (item.input_ids, []))[1].append(text_key)
        vectors: dict[bytes, np.ndarray] = {}
        for ids_key in by_ids:
            known = self.cache.get(ids_key, count=False)
            if known is not None:
                vectors[ids_key] = known
        todo = [ids_key for ids_key in by_ids if ids_key not in vectors]
        if todo:
            fresh = self._forward([by_ids[k][0] for k in todo], batch_size, show_progress_bar)
            for ids_key, vector in zip(todo, fresh, strict=True):
                vectors[ids_key] = self.cache.put(ids_key, vector)
        for ids_key, (_, members) in by_ids.items():
            for text_key in members:
                self.cache.put(text_key, vectors[ids_key])
                out[missing[text_key]] = vectors[ids_key]
        return out

    def _forward(
        self, sequences: list[list[int]], batch_size: int | None, show_progress_bar: bool | None
    ) -> np.ndarray:
        size = self.batch_size if batch_size is None else check_positive_int("batch_size", batch_size)
        if show_progress_bar is None:
            show_progress_bar = self.show_progress_bar
        if show_progress_bar is None:
            show_progress_bar = len(sequences) > 4 * size
        with self._forward_lock:
            self.encoded_texts += len(sequences)
            return self.backend.embed_ids(sequences, batch_size=size, show_progress_bar=show_progress_bar)

    # ----------------------------------------------------------------------------------------- tokens
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text has as a document (after the 1024-word cut, no special tokens, no limit)."""
        texts = check_texts("texts", texts)
        return [len(t) for t in self.backend.tokenize_for_cutting(texts)]

    def truncate_to_tokens(self, texts: Sequence[str], max_tokens: int, *, keep: str = "start") -> list[str]:
        """Each text cut to ``max_tokens`` tokens on a character boundary (shorter texts unchanged).

        ``keep="start"`` keeps the first tokens (the cut the model itself makes); ``keep="end"`` the last ones.
        """
        texts = check_texts("texts", texts)
        max_tokens = check_positive_int("max_tokens", max_tokens)
        if keep not in ("start", "end"):
            raise ValueError(f"keep must be 'start' or 'end', got {keep!r}")
        tokenized = self.backend.tokenize_for_cutting(texts)
        return [t.cut(max_tokens) if keep == "start" else t.cut_start(max_tokens) for t in tokenized]

    @property
    def max_document_text_tokens(self) -> int:
        """Tokens of document text one embedding holds: the document budget less the model's own special tokens."""
        return self.backend.max_document_tokens - self.backend.family.text_overhead

    # ----------------------------------------------------------------------------------------- prompts
    def build_listwise_prompt(self, query: str, documents: Sequence[str]) -> str:
        """The exact text embedded as the listwise pseudo-query for ``query`` and these candidates.

        Uses the first ``num_input_docs`` documents in the given order, the eval.py template, the tokenizer's
        chat template when it has one (generation prompt on, thinking off), and the prompt token budget.
        """
        query = check_query(query)
        documents = check_texts("documents", documents)
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
        first_stage_scores: Sequence[float | None] | None = None,
        ids: Sequence[Hashable] | None = None,
        deduplicate: bool = False,
        score_threshold: float | None = None,
        scale_score: bool = False,
        batch_size: int | None = None,
        window_size: int | None = None,
        stride: int | None = None,
        query_weight: float | None = None,
    ) -> list[RankedDocument[str]]:
        """Rerank ``documents`` for ``query``: the one contract every adapter calls.

        1. **Prompt.** The query and ``num_input_docs`` candidates form one listwise prompt: the best by
           ``first_stage_scores`` when given (descending, ties and missing scores in input order, missing last),
           else the first ones in input order.
        2. **Vectors.** ``document_embeddings`` is an ``(n, dimension)`` matrix or one entry per document: a vector
           (validated: real, finite, the model's dimension; reused, never re-encoded) or ``None`` (encoded, through
           the cache). Without it every document is encoded.
        3. **Scores.** Every candidate is scored by cosine similarity to the prompt embedding, in [-1, 1];
           ``scale_score=True`` reports ``(cos + 1) / 2`` in [0, 1] instead (monotonic, not a probability).
           ``score_threshold`` keeps documents whose *reported* score is ``>=`` it, before ``top_k``.
        4. **Duplicates.** With ``deduplicate=True`` candidates with the same key (``ids[i]`` when given, else the
           text) are ranked once: the copy with the highest first-stage score (the first on ties or without scores)
           stands for all, so a document passed twice is neither boosted nor listed twice.
        5. **Order.** Best first; equal scores keep input order; ``index`` points into ``documents``.
        6. **Window.** ``window_size``/``stride`` (default: the model's) switch to RankGPT-style sliding windows
           over the prompt order, back to front, each window reordering only itself.
        7. **Query weight.** ``query_weight`` (default: the model's, see the constructor) scores by cosine to
           ``normalize(p + query_weight * q)`` instead, ``q`` the query's retrieval embedding; 0 is the paper's score.

        Pass ``document_embeddings`` (from :meth:`embed_documents`, e.g. kept from retrieval) to skip re-encoding:
        then the prompt's forward pass is all the model work.
        """
        return self.rerank_batch(
            [query],
            [documents],
            top_k=top_k,
            document_embeddings=None if document_embeddings is None else [document_embeddings],
            num_input_docs=num_input_docs,
            first_stage_scores=None if first_stage_scores is None else [first_stage_scores],
            ids=None if ids is None else [ids],
            deduplicate=deduplicate,
            score_threshold=score_threshold,
            scale_score=scale_score,
            batch_size=batch_size,
            window_size=window_size,
            stride=stride,
            query_weight=query_weight,
        )[0]

    def rerank_batch(
        self,
        queries: Sequence[str],
        documents_per_query: Sequence[Sequence[str]],
        *,
        top_k: int | None = None,
        document_embeddings: Sequence[EmbeddingsLike | None] | None = None,
        num_input_docs: int | None = None,
        first_stage_scores: Sequence[Sequence[float | None] | None] | None = None,
        ids: Sequence[Sequence[Hashable] | None] | None = None,
        deduplicate: bool = False,
        score_threshold: float | None = None,
        scale_score: bool = False,
        batch_size: int | None = None,
        window_size: int | None = None,
        stride: int | None = None,
        query_weight: float | None = None,
    ) -> list[list[RankedDocument[str]]]:
        """:meth:`rerank` for many queries at once: documents and prompts are embedded in shared batches.

        Every per-query argument (``document_embeddings``, ``first_stage_scores``, ``ids``) is a list with one entry
        (or ``None``) per query.
        """
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings, not a single string; use rerank() for one query")
        queries = [check_query(q) for q in queries]
        n = len(queries)
        if len(documents_per_query) != n:
            raise ValueError(f"documents_per_query has {len(documents_per_query)} lists for {n} queries")
        doc_lists = [check_texts("documents", docs) for docs in documents_per_query]
        top_k = check_optional_positive_int("top_k", top_k)
        k = self._num_input_docs(num_input_docs)
        threshold = check_optional_float("score_threshold", score_threshold)
        scaled = check_bool("scale_score", scale_score)
        dedup = check_bool("deduplicate", deduplicate)
        batch_size = check_optional_positive_int("batch_size", batch_size)
        weight = self.query_weight if query_weight is None else check_query_weight(query_weight)
        window = _check_window(
            self.window_size if window_size is None else window_size, self.stride if stride is None else stride
        )
        given_embeddings = _per_query("document_embeddings", document_embeddings, n)
        given_scores = _per_query("first_stage_scores", first_stage_scores, n)
        given_ids = _per_query("ids", ids, n)

        plans = [
            _CandidatePlan.build(docs, check_first_stage_scores(scores, len(docs)), keys, dedup)
            for docs, scores, keys in zip(doc_lists, given_scores, given_ids, strict=True)
        ]
        matrices = self._document_matrices(doc_lists, given_embeddings, plans, batch_size)

        if window is not None:
            ranked = [
                self._sliding_window(q, plan, docs, m, *window, weight) if plan.kept else []
                for q, docs, m, plan in zip(queries, doc_lists, matrices, plans, strict=True)
            ]
        else:
            active = [i for i, plan in enumerate(plans) if plan.kept]
            prompts = self.embed_listwise_prompts(
                [queries[i] for i in active],
                [[doc_lists[i][j] for j in plans[i].prompt_order] for i in active],
                num_input_docs=k,
            )
            prompts = self._scoring_vectors([queries[i] for i in active], prompts, weight)
            ranked = [[] for _ in queries]
            for row, i in enumerate(active):
                cosines = cosine_scores(prompts[row], matrices[i])
                kept = plans[i].kept
                local = rank_by_score(cosines, kept)
                ranked[i] = [RankedDocument(hit.document, hit.score, doc_lists[i][hit.document]) for hit in local]
        return [self._report(hits, top_k, threshold, scaled) for hits in ranked]

    def _scoring_vectors(self, queries: list[str], prompts: np.ndarray, weight: float) -> np.ndarray:
        """What candidates are scored against: the prompt embeddings, or with a query ``weight`` > 0 each prompt
        combined with its query's retrieval embedding (the one rule: ``rocchio.combine_query_embedding``)."""
        if not weight or not queries:
            return prompts
        return combine_query_embedding(prompts, self.embed_queries(queries), weight)

    @staticmethod
    def _report(
        hits: list[RankedDocument[str]], top_k: int | None, threshold: float | None, scaled: bool
    ) -> list[RankedDocument[str]]:
        """Scale, then threshold (on the reported score), then cut to ``top_k``."""
        out = [RankedDocument(h.index, scale_score(h.score), h.document) for h in hits] if scaled else hits
        if threshold is not None:
            out = [h for h in out if h.score >= threshold]
        return out if top_k is None else out[:top_k]

    def _document_matrices(
        self,
        doc_lists: list[list[str]],
        given: list[Any],
        plans: list[_CandidatePlan],
        batch_size: int | None,
    ) -> list[np.ndarray]:
        """One L2-normalised row per kept candidate of each query: given vectors reused, the rest encoded together."""
        rows: list[list[np.ndarray | None]] = []
        for docs, embeddings, plan in zip(doc_lists, given, plans, strict=True):
            vectors = self._given_vectors(embeddings, len(docs))
            rows.append([vectors[j] for j in plan.kept])
        missing = [(i, r) for i, row in enumerate(rows) for r, v in enumerate(row) if v is None]
        if missing:
            encoded = self.embed_documents([doc_lists[i][plans[i].kept[r]] for i, r in missing], batch_size=batch_size)
            for (i, r), vector in zip(missing, encoded, strict=True):
                rows[i][r] = vector
        return [
            l2_normalize(np.stack(row)) if row else np.zeros((0, self.dimension), dtype=np.float32)  # type: ignore[arg-type]
            for row in rows
        ]

    def _given_vectors(self, embeddings: Any, n_documents: int) -> list[np.ndarray | None]:
        """Validate caller-given document vectors: a matrix or one vector-or-None per document."""
        if embeddings is None:
            return [None] * n_documents
        if isinstance(embeddings, np.ndarray):
            if embeddings.ndim != 2:
                raise ValueError(
                    f"document_embeddings must be 2-D (n_documents, dimension), got shape {embeddings.shape}"
                )
            entries: list[Any] = list(embeddings)
        elif isinstance(embeddings, str | bytes) or not isinstance(embeddings, Sequence):
            raise TypeError(
                "document_embeddings must be a matrix or a list with one vector (or None) per document, "
                f"got {type(embeddings).__name__}"
            )
        else:
            entries = list(embeddings)
        if len(entries) != n_documents:
            raise ValueError(f"document_embeddings has {len(entries)} rows for {n_documents} documents")
        return [
            None if v is None else check_vector(f"document_embeddings[{j}]", v, self.dimension, self.model_name)
            for j, v in enumerate(entries)
        ]

    def _sliding_window(
        self,
        query: str,
        plan: _CandidatePlan,
        documents: list[str],
        doc_matrix: np.ndarray,
        size: int,
        stride: int,
        weight: float,
    ) -> list[RankedDocument[str]]:
        """RankGPT-style windows from the back of the list to the front; each reorders only itself.

        The list starts in prompt order (first-stage scores when given); positions are rows of ``doc_matrix``.
        """
        position = {doc: row for row, doc in enumerate(plan.kept)}
        order = [position[doc] for doc in plan.prompt_order]
        scores = np.zeros(len(order), dtype=np.float32)
        end = len(order)
        start = max(0, end - size)
        while True:
            window = order[start:end]
            prompt = self.embed_listwise_prompts(
                [query], [[documents[plan.kept[r]] for r in window]], num_input_docs=len(window)
            )
            prompt = self._scoring_vectors([query], prompt, weight)[0]
            reordered = rank_by_score(cosine_scores(prompt, doc_matrix[window]), window)
            order[start:end] = [r.document for r in reordered]
            for r in reordered:
                scores[r.document] = r.score
            if start == 0:
                break
            end -= stride
            start = max(0, start - stride)
        return [RankedDocument(plan.kept[r], float(scores[r]), documents[plan.kept[r]]) for r in order]

    # ----------------------------------------------------------------------------------------- validation
    def check_document_embeddings(self, embeddings: EmbeddingsLike, n_documents: int) -> np.ndarray:
        """Validate a full ``(n_documents, dimension)`` set of caller vectors; returns them L2-normalised."""
        vectors = self._given_vectors(embeddings, n_documents)
        if any(v is None for v in vectors):
            raise ValueError("document_embeddings has a missing (None) row")
        if not vectors:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return l2_normalize(np.stack(vectors))  # type: ignore[arg-type]

    def _num_input_docs(self, num_input_docs: int | None) -> int:
        if num_input_docs is None:
            return self.num_input_docs
        return check_positive_int("num_input_docs", num_input_docs)


def _check_window(window_size: object, stride: object) -> tuple[int, int] | None:
    """``None`` (one prompt) or a valid ``(window_size, stride)``: 2 <= size, 1 <= stride <= size."""
    if window_size is None:
        return None
    size = check_positive_int("window_size", window_size)
    step = check_positive_int("stride", stride)
    if size < 2:
        raise ValueError(f"window_size must be at least 2, got {size}")
    if step > size:
        raise ValueError(f"stride ({step}) must not exceed window_size ({size})")
    return size, step


def _per_query(name: str, values: Sequence[Any] | None, n_queries: int) -> list[Any]:
    if values is None:
        return [None] * n_queries
    if isinstance(values, str | bytes) or len(values) != n_queries:
        raise ValueError(f"{name} must have one entry per query ({n_queries})")
    return list(values)


@dataclass(frozen=True, slots=True)
class _CandidatePlan:
    """Which input positions are ranked (``kept``, in input order) and which enter the prompt first."""

    kept: list[int]
    prompt_order: list[int]

    @classmethod
    def build(
        cls,
        documents: list[str],
        scores: list[float | None] | None,
        keys: Sequence[Hashable] | None,
        deduplicate: bool,
    ) -> _CandidatePlan:
        n = len(documents)
        if keys is not None and len(keys) != n:
            raise ValueError(f"ids has {len(keys)} entries for {n} documents")
        kept = list(range(n))
        if deduplicate:
            best: dict[Hashable, int] = {}
            for j in range(n):
                key = keys[j] if keys is not None else documents[j]
                held = best.get(key)
                if held is None or _score_or_low(scores, j) > _score_or_low(scores, held):
                    best[key] = j
            kept = sorted(best.values())
        if scores is None:
            return cls(kept, kept)
        order = sorted(kept, key=lambda j: -_score_or_low(scores, j))  # stable: ties keep input order
        return cls(kept, order)


def _score_or_low(scores: list[float | None] | None, j: int) -> float:
    if scores is None or scores[j] is None:
        return -math.inf
    return float(scores[j])  # type: ignore[arg-type]


_SHARED_MODELS: dict[tuple[Any, ...], E2RankModel] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(model_name_or_path: str, **kwargs: Any) -> E2RankModel:
    """One loaded :class:`E2RankModel` per (model, settings) in this process.

    The framework adapters call this, so a retriever-side embedder and a ranker that name the same model and
    settings share one copy of the weights (and its embedding cache) instead of loading it twice.
    """
    from .backend import resolve_device, resolve_dtype
    from .runtimes import check_backend

    # Equal settings spelled differently ("cpu" vs None on a CPU machine, "fp16" vs "float16") are one model.
    settings = {k: v for k, v in kwargs.items() if v is not None}
    settings["backend"] = check_backend(kwargs.get("backend"))
    settings["device"] = "cpu" if settings["backend"] != "torch" else resolve_device(kwargs.get("device"))
    if "dtype" in settings:
        settings["dtype"] = resolve_dtype(settings["dtype"])
    key = (str(model_name_or_path), tuple(sorted((k, repr(v)) for k, v in settings.items())))
    with _SHARED_LOCK:
        model = _SHARED_MODELS.get(key)
        if model is None:
            model = E2RankModel(model_name_or_path, **kwargs)
            _SHARED_MODELS[key] = model
        return model
