"""E2RankEmbedding: a LlamaIndex embedding model with E2Rank's retrieval formats."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from e2rank_core import E2RankModel, default_model, shared_model


class E2RankEmbedding(BaseEmbedding):
    """Embed nodes and queries with the model that also reranks (see ``E2RankRerank``).

    Usage::

        from llama_index.core import Settings, VectorStoreIndex
        from llama_index.embeddings.e2rank import E2RankEmbedding

        Settings.embed_model = E2RankEmbedding(model="e2rank/minilm-l6-e2rank")
        index = VectorStoreIndex.from_documents(documents)

        embedder = Settings.embed_model
        vector = embedder.get_query_embedding("capital of France")  # list[float], L2-normalised

    * Texts (nodes: ``MetadataMode.EMBED`` content, chosen by LlamaIndex) are embedded as they are, through
      ``E2RankModel.embed_documents``; these are exactly the vectors ``E2RankRerank`` computes for the same
      nodes, so ``E2RankRerank(use_node_embeddings=True)`` can reuse them.
    * Queries use the paper's retrieval format ``Instruct: {query_instruction}\\nQuery:{query}`` through
      ``E2RankModel.embed_queries`` (``query_instruction=None`` = the paper's default web-search task);
      ``plain_queries=True`` embeds the bare query, for models never trained with instructions.
    * ``model_name`` (LlamaIndex's usual argument) is accepted as an alias of ``model``; both always agree.
    * The model is loaded lazily on first use and shared with every ``E2RankRerank``/``E2RankEmbedding`` of the
      same (model, device, dtype, trust_remote_code) in the process. Async methods run in a worker thread.
    """

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    query_instruction: str | None = Field(default=None, description="retrieval task for queries; None = paper's")
    plain_queries: bool = Field(default=False, description="embed bare queries (models trained without instructions)")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float32 on CPU")
    trust_remote_code: bool = Field(default=False, description="allow custom model code from the checkpoint")
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="texts per forward pass")

    _model: E2RankModel | None = PrivateAttr(default=None)
    _model_key: tuple[Any, ...] | None = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        model, alias = kwargs.get("model"), kwargs.get("model_name")
        if model is not None and alias is not None and model != alias:
            raise ValueError(f"model ({model!r}) and model_name ({alias!r}) disagree; pass one of them")
        chosen = model if model is not None else alias if alias is not None else default_model()
        kwargs["model"] = kwargs["model_name"] = chosen
        super().__init__(**kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "E2RankEmbedding"

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded :class:`~e2rank_core.E2RankModel` (loaded on first access, shared per settings)."""
        key = (self.model, self.device, self.dtype, self.trust_remote_code)
        if self._model is None or self._model_key != key:
            self._model = shared_model(
                self.model, device=self.device, dtype=self.dtype, trust_remote_code=self.trust_remote_code
            )
            self._model_key = key
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        # Pickle the settings, not the weights (ingestion pipelines pickle embedders for worker processes).
        # Cleared before the base class test-pickles every attribute, which would serialise the whole model.
        loaded = self._model, self._model_key
        self._model = self._model_key = None
        try:
            return super().__getstate__()
        finally:
            self._model, self._model_key = loaded

    def _get_query_embedding(self, query: str) -> Embedding:
        return self.e2rank_model.embed_queries([query], instruction=self.query_instruction, plain=self.plain_queries)[
            0
        ].tolist()

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self.e2rank_model.embed_documents(texts, batch_size=self.embed_batch_size).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
