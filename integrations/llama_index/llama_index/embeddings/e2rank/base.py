"""E2RankEmbedding: a LlamaIndex embedding model with E2Rank's retrieval formats."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import ConfigDict, Field, field_validator, model_validator

from e2rank_core import E2RankModel, default_model
from e2rank_core.settings import (
    ModelSettings,
    check_device,
    check_dtype,
    check_flag,
    check_model_name,
    reject_unknown_arguments,
)


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
    * The query format follows the model (``Instruct: {query_instruction}\\nQuery:{query}`` for models trained with
      it, the bare query for other embedders); ``plain_queries=True``/``False`` overrides.
    * ``model_name`` (LlamaIndex's usual argument) is accepted for ``model``; both always agree. Unknown arguments
      are an error.
    * The model loads on first use and is shared with every e2rank component of any framework naming the same
      model and settings. Async methods run in a worker thread.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    query_instruction: str | None = Field(default=None, description="retrieval task for queries; None = paper's")
    plain_queries: bool | None = Field(default=None, description="bare queries; None follows the model")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float32 on CPU")
    token: str | None = Field(default=None, description="Hugging Face token", exclude=True, repr=False)
    model_kwargs: dict[str, Any] | None = Field(default=None, description="passed to from_pretrained")
    trust_remote_code: bool = Field(default=False, description="allow custom model code from the checkpoint")
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="texts per forward pass")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, values: Any) -> Any:
        if isinstance(values, dict):
            values = dict(values)
            model, alias = values.get("model"), values.get("model_name")
            if model is not None and alias is not None and model != alias:
                raise ValueError(f"model ({model!r}) and model_name ({alias!r}) disagree; pass one of them")
            chosen = check_model_name(model if model is not None else alias) or default_model()
            values["model"] = values["model_name"] = chosen
            if "batch_size" in values:  # the spelling of the other e2rank adapters
                values["embed_batch_size"] = values.pop("batch_size")
            reject_unknown_arguments(cls.__name__, values, cls.model_fields)
        return values

    @field_validator("trust_remote_code", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        return check_flag("trust_remote_code", value)

    @field_validator("plain_queries", mode="before")
    @classmethod
    def _plain(cls, value: Any) -> bool | None:
        return None if value is None else check_flag("plain_queries", value)

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> str | None:
        return check_device(value)

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: Any) -> str | None:
        return check_dtype(value)

    @classmethod
    def class_name(cls) -> str:
        return "E2RankEmbedding"

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded :class:`~e2rank_core.E2RankModel` (loaded on first access, shared per settings)."""
        return ModelSettings(
            self.model, self.device, self.dtype, self.token, self.trust_remote_code, self.model_kwargs
        ).load()

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
