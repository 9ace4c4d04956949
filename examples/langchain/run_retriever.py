"""LangChain: a vector store with E2Rank embeddings and E2Rank reranking, as a ContextualCompressionRetriever and
as an LCEL chain that reuses the store's vectors (so the reranker only embeds its listwise prompt).

Run: ``python examples/langchain/run_retriever.py [MODEL]`` (offline, on the bundled e2rank/minilm-l6-e2rank; ~200
SciFact abstracts from ../shared/data, else the bundled capitals file; needs ``langchain-classic``, in
``e2rank[examples]``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import load_corpus
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_e2rank import E2RankEmbeddings, E2RankRerank

from e2rank_core import default_model

# Default: the bundled E2Rank-trained MiniLM; pass an official checkpoint (e.g. Alibaba-NLP/E2Rank-0.6B, when it
# is available locally) for the paper's quality.
MODEL = sys.argv[1] if len(sys.argv) > 1 else default_model()

start = time.perf_counter()
corpus = load_corpus(max_documents=200)
store = InMemoryVectorStore(E2RankEmbeddings(model=MODEL))  # E2RankRerank below shares its loaded model
store.add_documents(
    [Document(page_content=d["text"], metadata={"title": d["title"]}, id=d["id"]) for d in corpus.documents]
)
print(f"indexed {len(corpus.documents)} {corpus.name} documents in {time.perf_counter() - start:.1f} s")
base_retriever = store.as_retriever(search_kwargs={"k": 50})

# 1) The usual way: a compression retriever (first stage k=50, reranked, top 3 kept).
retriever = ContextualCompressionRetriever(
    base_compressor=E2RankRerank(model=MODEL, top_n=3), base_retriever=base_retriever
)


# 2) An LCEL chain that hands the reranker the vectors the store already holds: retriever and reranker are one
#    model, so the 50 candidates are not embedded again.
def attach_vectors(docs: list[Document]) -> list[Document]:
    return [
        Document(d.page_content, metadata={**d.metadata, "embedding": store.store[d.id]["vector"]}, id=d.id)
        for d in docs
    ]


reusing = E2RankRerank(model=MODEL, top_n=3, embedding_metadata_key="embedding")
chain = {"docs": base_retriever | RunnableLambda(attach_vectors), "query": RunnablePassthrough()} | RunnableLambda(
    lambda x: reusing.compress_documents(x["docs"], x["query"])
)

for text, relevant in corpus.queries:
    print(f"\nQ: {text}")
    first_stage = [d.id for d in base_retriever.invoke(text)]
    results = retriever.invoke(text)
    for rank, doc in enumerate(results, start=1):
        mark = "*" if doc.id in relevant else " "
        title = doc.metadata.get("title") or doc.page_content[:90]
        before = first_stage.index(doc.id) + 1
        print(f" {mark}{rank}. {doc.metadata['relevance_score']:+.3f}  (first stage #{before:>2})  {title}")
    same = [d.id for d in chain.invoke(text)] == [d.id for d in results]
    print(f"   LCEL chain with reused vectors gives the same top 3: {same}")
print(f"\n(* = judged relevant; model {MODEL})  total {time.perf_counter() - start:.1f} s")
