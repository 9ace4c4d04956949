"""E2RankEmbeddings: the retriever side of the model that reranks."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from pydantic import Field

from e2rank_core.pydantic_fields import E2RankModelFields


class E2RankEmbeddings(E2RankModelFields, Embeddings):
    """LangChain embeddings with E2Rank's formats: documents as raw text, queries in the model's retrieval format.

    Usage::

        from langchain_core.vectorstores import InMemoryVectorStore
        from langchain_e2rank import E2RankEmbeddings

        store = InMemoryVectorStore(E2RankEmbeddings(model="e2rank/minilm-l6-e2rank"))
        store.add_texts(["Paris is the capital of France", "Berlin is in Germany"])
        print(store.similarity_search("capital of France", k=1)[0].page_content)

    * ``embed_documents`` calls ``E2RankModel.embed_documents``: the vectors are exactly the ones
      ``E2RankRerank`` computes for the same texts, so they can be handed back to it for reuse
      (``document_embeddings=`` or ``embedding_metadata_key``).
    * ``embed_query`` follows the model: ``Instruct: {query_instruction}\\nQuery:{query}`` for models trained with it
      (``query_instruction=None`` = the paper's web-search task), the bare query for other embedders;
      ``plain_queries=True``/``False`` overrides.
    * Vectors are L2-normalised plain ``list[float]``. Async variants run in a worker thread (LangChain's default).
    """

    query_instruction: str | None = Field(default=None, description="retrieval task; None = the paper's default")
    plain_queries: bool | None = Field(default=None, description="bare queries; None follows the model")
    batch_size: int = Field(default=32, ge=1, description="texts per forward pass")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (raw text): one L2-normalised vector per text."""
        return self.e2rank_model.embed_documents(texts, batch_size=self.batch_size).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a query in the model's retrieval format."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        return self.e2rank_model.embed_queries([text], instruction=self.query_instruction, plain=self.plain_queries)[
            0
        ].tolist()
