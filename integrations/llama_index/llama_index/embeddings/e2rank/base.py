"""E2RankEmbedding: a LlamaIndex embedding model with E2Rank's retrieval formats."""

from __future__ import annotations

import asyncio

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from e2rank_core import E2RankModel, default_model, shared_model


class E2RankEmbedding(BaseEmbedding):
    """Embed nodes and queries with the model that also reranks (see ``E2RankRerank``).

    Usage::

        from llama_index.core import Settings, VectorStoreIndex
        from llama_index.embeddings.e2rank import E2RankEmbedding

        Settings.embed_model = E2RankEmbedding(model="sentence-transformers/all-MiniLM-L6-v2")
        index = VectorStoreIndex.from_documents(documents)

    Texts are embedded as they are; queries as ``Instruct: {query_instruction}\\nQuery:{query}``
    (``None`` = the paper's default web-search task).
    """

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    query_instruction: str | None = Field(default=None, description="retrieval task for queries")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16")
    trust_remote_code: bool = False

    _model: E2RankModel | None = PrivateAttr(default=None)

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("model_name", kwargs.get("model") or default_model())
        super().__init__(**kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "E2RankEmbedding"

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded model (loaded once, on first use; shared with E2RankRerank of the same settings)."""
        if self._model is None:
            self._model = shared_model(
                self.model, device=self.device, dtype=self.dtype, trust_remote_code=self.trust_remote_code
            )
        return self._model

    def _get_query_embedding(self, query: str) -> Embedding:
        return self.e2rank_model.embed_queries([query], instruction=self.query_instruction)[0].tolist()

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
