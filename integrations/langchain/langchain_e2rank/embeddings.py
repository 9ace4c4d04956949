"""E2RankEmbeddings: the retriever side of the model that reranks."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from e2rank_core import E2RankModel, default_model

from ._model import load_model


class E2RankEmbeddings(BaseModel, Embeddings):
    """LangChain embeddings with E2Rank's formats: documents as raw text, queries as
    ``Instruct: {query_instruction}\\nQuery:{query}``.

    Usage::

        from langchain_core.vectorstores import InMemoryVectorStore
        from langchain_e2rank import E2RankEmbeddings

        store = InMemoryVectorStore(E2RankEmbeddings(model="sentence-transformers/all-MiniLM-L6-v2"))
        store.add_texts(["Paris is the capital of France", "Berlin is in Germany"])
        print(store.similarity_search("capital of France", k=1)[0].page_content)

    Async variants (``aembed_documents``, ``aembed_query``) run in a worker thread (LangChain's default).
    """

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    query_instruction: str | None = Field(default=None, description="retrieval task; None = the paper's default")
    device: str | None = None
    dtype: str | None = None
    batch_size: int = Field(default=32, ge=1)
    trust_remote_code: bool = False

    model_config = ConfigDict(extra="forbid")

    _model: E2RankModel | None = PrivateAttr(default=None)

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded model (loaded on first use, shared with E2RankRerank of the same settings)."""
        if self._model is None:
            self._model = load_model(self.model, self.device, self.dtype, self.trust_remote_code)
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (L2-normalised)."""
        return self.e2rank_model.embed_documents(texts, batch_size=self.batch_size).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a query in the retrieval format."""
        return self.e2rank_model.embed_queries([text], instruction=self.query_instruction)[0].tolist()
