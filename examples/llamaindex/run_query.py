"""LlamaIndex: a VectorStoreIndex with E2Rank embeddings, retrieve 50, rerank the 50 with E2RankRerank.

Run: ``python examples/llamaindex/run_query.py`` -- offline, on the default model (``e2rank_core.default_model()``:
the bundled, E2Rank-trained ``e2rank/minilm-l6-e2rank``), over ~200 SciFact abstracts from ../shared/data (or the
bundled capitals file when that data is absent). No LLM is called: ``Settings.llm`` is LlamaIndex's ``MockLLM``.

The output prints where the judged-relevant abstracts sit before and after reranking. The bundled model is a small
encoder whose 512-token limit squeezes 20 abstracts into one prompt; an official E2Rank model (e.g.
``Alibaba-NLP/E2Rank-0.6B`` from a local folder) as ``MODEL`` gives the paper's quality.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import load_corpus
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.embeddings.e2rank import E2RankEmbedding
from llama_index.postprocessor.e2rank_rerank import E2RankRerank

from e2rank_core import default_model

MODEL = default_model()
Settings.llm = MockLLM()  # no network; the query engine below only shows where the reranker plugs in

start = time.perf_counter()
corpus = load_corpus(max_queries=3, max_documents=200)
nodes = [TextNode(text=d["text"], id_=d["id"], metadata={"title": d["title"]}) for d in corpus.documents]
embed_model = E2RankEmbedding(model=MODEL)
index = VectorStoreIndex(nodes, embed_model=embed_model)  # embeds title + text (MetadataMode.EMBED)
retriever = index.as_retriever(similarity_top_k=50)
# The vectors in the index are the ones the reranker would compute, so reuse them: one forward pass per rerank.
reranker = E2RankRerank(model=MODEL, top_n=10, use_node_embeddings=True)
print(f"{MODEL}: indexed {len(nodes)} {corpus.name} documents in {time.perf_counter() - start:.1f}s")


def with_stored_vectors(hits: list[NodeWithScore]) -> list[NodeWithScore]:
    """Copies of the retrieved nodes carrying their vectors (SimpleVectorStore keeps them; retrieval drops them)."""
    return [
        NodeWithScore(
            node=h.node.model_copy(update={"embedding": index.vector_store.get(h.node.node_id)}), score=h.score
        )
        for h in hits
    ]


def label(node: NodeWithScore) -> str:
    return node.node.metadata.get("title") or node.node.get_content()[:90]


for text, relevant in corpus.queries:
    hits = retriever.retrieve(text)
    first = {h.node.node_id: rank for rank, h in enumerate(hits, start=1)}
    reranked = reranker.postprocess_nodes(with_stored_vectors(hits), query_str=text)
    second = {h.node.node_id: rank for rank, h in enumerate(reranked, start=1)}
    print(f"\nQ: {text}")
    for rank, hit in enumerate(reranked[:3], start=1):
        mark = "*" if hit.node.node_id in relevant else " "
        print(f" {mark}{rank}. {hit.score:+.3f}  (retrieval #{first[hit.node.node_id]:>2})  {label(hit)[:80]}")
    for doc_id in sorted(relevant):
        print(f"  relevant {doc_id}: retrieval #{first.get(doc_id, '-')}, reranked #{second.get(doc_id, '-')}")

# The same reranker inside a query engine (retrieved nodes carry no vectors there, so they are re-encoded).
engine = index.as_query_engine(similarity_top_k=50, node_postprocessors=[E2RankRerank(model=MODEL, top_n=3)])
response = engine.query(corpus.queries[0][0])
print(f"\nquery engine sources for Q1: {[label(n)[:40] for n in response.source_nodes]}")
print(f"\n(* = judged relevant; total {time.perf_counter() - start:.1f}s)")
