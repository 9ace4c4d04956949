"""Retrieve and rerank with one model, offline: `python examples/quickstart.py`."""

from __future__ import annotations

from pathlib import Path

from e2rank_core import E2RankModel, default_model

DOCS = [line for line in (Path(__file__).parent / "data" / "capitals.txt").read_text().splitlines() if line.strip()]
QUERY = "What is the capital of France?"

model = E2RankModel(default_model())
print(model)

# 1. Retrieval: embed the documents once (at indexing time) and the query in the paper's retrieval format.
doc_vectors = model.embed_documents(DOCS)
query_vector = model.embed_queries([QUERY])[0]
candidates = (doc_vectors @ query_vector).argsort()[::-1][:5].tolist()
print("\nretrieved:", candidates)

# 2. Rerank the candidates, reusing their vectors: the listwise prompt is the only forward pass.
hits = model.rerank(QUERY, [DOCS[i] for i in candidates], document_embeddings=doc_vectors[candidates])
for rank, hit in enumerate(hits, start=1):
    print(f"{rank}. {hit.score:+.3f}  {hit.document}")

print("\nthe listwise prompt that was embedded:\n" + model.build_listwise_prompt(QUERY, [DOCS[i] for i in candidates]))
