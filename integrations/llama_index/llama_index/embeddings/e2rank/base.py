"""E2RankEmbedding: a LlamaIndex embedding model with E2Rank's retrieval formats."""

from __future__ import annotations

import asyncio

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, model_validator

from e2rank_core.pydantic_fields import E2RankModelFields


class E2RankEmbedding(E2RankModelFields, BaseEmbedding):
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
    * The query format follows the model (``Instruct: {query_instruction}\\nQuery:{query}`` for models trained with
      it, the bare query for other embedders); ``plain_queries=True``/``False`` overrides.
    * ``model_name`` (LlamaIndex's usual argument) is accepted for ``model``; both always agree. Unknown arguments
      are an error.
    * The model loads on first use and is shared with every e2rank component of any framework naming the same
      model and settings. Async methods run in a worker thread.
    """

    query_instruction: str | None = Field(default=None, description="retrieval task for queries; None = paper's")
    plain_queries: bool | None = Field(default=None, description="bare queries; None follows the model")
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="texts per forward pass")

    @model_validator(mode="after")
    def _same_model_name(self) -> E2RankEmbedding:
        # LlamaIndex reads model_name; e2rank reads model: both always name the same model.
        if self.model_name != self.model:
            object.__setattr__(self, "model_name", self.model)
        return self

    @classmethod
    def class_name(cls) -> str:
        return "E2RankEmbedding"

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
