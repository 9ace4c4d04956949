"""E2RankEmbeddings: the retriever side of the model that reranks."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from e2rank_core import E2RankModel, default_model

from ._model import LoadsSharedModel


class E2RankEmbeddings(LoadsSharedModel, BaseModel, Embeddings):
    """LangChain embeddings with E2Rank's formats: documents as raw text, queries as
    ``Instruct: {query_instruction}\\nQuery:{query}`` (the paper's retrieval format).

    Usage::

        from langchain_core.vectorstores import InMemoryVectorStore
        from langchain_e2rank import E2RankEmbeddings

        store = InMemoryVectorStore(E2RankEmbeddings(model="e2rank/minilm-l6-e2rank"))
        store.add_texts(["Paris is the capital of France", "Berlin is in Germany"])
        print(store.similarity_search("capital of France", k=1)[0].page_content)

    * ``embed_documents`` calls ``E2RankModel.embed_documents``: the vectors are exactly the ones
      ``E2RankRerank`` computes for the same texts, so they can be handed back to it for reuse
      (``document_embeddings=`` or ``embedding_metadata_key``).
    * ``embed_query`` calls ``E2RankModel.embed_queries`` with ``query_instruction`` (``None`` = the paper's
      default web-search task); ``plain_queries=True`` embeds the bare query, for models never trained with
      instructions.
    * Vectors are L2-normalised plain ``list[float]``. Async variants run in a worker thread (LangChain's default).
    * The model loads on first use and is shared with every ``E2RankRerank``/``E2RankEmbeddings`` of the same
      (model, device, dtype, trust_remote_code) in the process.
    """

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    query_instruction: str | None = Field(default=None, description="retrieval task; None = the paper's default")
    plain_queries: bool = Field(default=False, description="embed bare queries (models trained without instructions)")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float32 on CPU")
    batch_size: int = Field(default=32, ge=1, description="texts per forward pass")
    trust_remote_code: bool = Field(default=False, description="allow custom model code from the checkpoint")

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    _model: E2RankModel | None = PrivateAttr(default=None)
    _model_key: tuple[Any, ...] | None = PrivateAttr(default=None)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (raw text): one L2-normalised vector per text."""
        return self.e2rank_model.embed_documents(texts, batch_size=self.batch_size).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a query in the retrieval format ``Instruct: {query_instruction}\\nQuery:{text}``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        return self.e2rank_model.embed_queries([text], instruction=self.query_instruction, plain=self.plain_queries)[
            0
        ].tolist()
