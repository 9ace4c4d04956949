"""LangChain: a vector store with E2Rank embeddings and E2Rank reranking in a ContextualCompressionRetriever.

Run: ``python examples/langchain/run_retriever.py`` (offline, on the packaged all-MiniLM-L6-v2;
needs ``langchain-classic``, in ``e2rank[examples]``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import load_corpus
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_e2rank import E2RankEmbeddings, E2RankRerank

MODEL = "sentence-transformers/all-MiniLM-L6-v2"

corpus = load_corpus()
store = InMemoryVectorStore(E2RankEmbeddings(model=MODEL))
store.add_documents(
    [Document(page_content=d["text"], metadata={"title": d["title"]}, id=d["id"]) for d in corpus.documents]
)
print(f"indexed {len(corpus.documents)} {corpus.name} documents")

retriever = ContextualCompressionRetriever(
    base_compressor=E2RankRerank(model=MODEL, top_n=3),
    base_retriever=store.as_retriever(search_kwargs={"k": 50}),
)
for text, relevant in corpus.queries:
    print(f"\nQ: {text}")
    for rank, doc in enumerate(retriever.invoke(text), start=1):
        mark = "*" if doc.id in relevant else " "
        title = doc.metadata.get("title") or doc.page_content[:90]
        print(f" {mark}{rank}. {doc.metadata['relevance_score']:+.3f}  {title}")
print("\n(* = judged relevant)")
