"""LlamaIndex: a VectorStoreIndex with E2Rank embeddings, retrieve 50, rerank with E2RankRerank.

Run: ``python examples/llamaindex/run_query.py`` (offline, on the packaged all-MiniLM-L6-v2; no LLM is called).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import load_corpus
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.embeddings.e2rank import E2RankEmbedding
from llama_index.postprocessor.e2rank_rerank import E2RankRerank

MODEL = "sentence-transformers/all-MiniLM-L6-v2"

corpus = load_corpus()
nodes = [TextNode(text=d["text"], id_=d["id"], metadata={"title": d["title"]}) for d in corpus.documents]
index = VectorStoreIndex(nodes, embed_model=E2RankEmbedding(model=MODEL))
retriever = index.as_retriever(similarity_top_k=50)
reranker = E2RankRerank(model=MODEL, top_n=3)
print(f"indexed {len(nodes)} {corpus.name} documents")

for text, relevant in corpus.queries:
    print(f"\nQ: {text}")
    for rank, hit in enumerate(reranker.postprocess_nodes(retriever.retrieve(text), query_str=text), start=1):
        mark = "*" if hit.node.node_id in relevant else " "
        print(f" {mark}{rank}. {hit.score:+.3f}  {hit.node.metadata.get('title') or hit.node.get_content()[:90]}")
print("\n(* = judged relevant)")
