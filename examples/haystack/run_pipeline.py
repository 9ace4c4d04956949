"""Haystack: index a small real corpus, then retrieve and rerank with E2Rank; both pipelines are loaded from YAML.

Run: ``python examples/haystack/run_pipeline.py`` (offline, on ``e2rank_core.default_model()``; ~200 SciFact
abstracts from ../shared/data when present, else examples/data/capitals.txt).

* ``indexing.yaml``: E2RankDocumentEmbedder -> DocumentWriter into the in-memory index ``e2rank-example``.
* ``pipeline.yaml``: E2RankTextEmbedder -> InMemoryEmbeddingRetriever(top_k=50, return_embedding=True)
  -> E2RankRanker(use_document_embeddings=True): the ranker reuses the retrieved vectors, so reranking costs
  one forward pass (the listwise prompt).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import load_corpus
from haystack import Document, Pipeline

HERE = Path(__file__).resolve().parent


def main() -> None:
    corpus = load_corpus(max_queries=3, max_documents=200)
    indexing = Pipeline.loads((HERE / "indexing.yaml").read_text())  # no unsafe flag, no allowlist
    query = Pipeline.loads((HERE / "pipeline.yaml").read_text())

    start = time.perf_counter()
    documents = [Document(id=d["id"], content=d["text"], meta={"title": d["title"]}) for d in corpus.documents]
    written = indexing.run({"embedder": {"documents": documents}})["writer"]["documents_written"]
    model = query.get_component("ranker").model  # type: ignore[attr-defined]
    print(f"indexed {written} {corpus.name} documents with {model} in {time.perf_counter() - start:.1f} s")

    for text, relevant in corpus.queries:
        start = time.perf_counter()
        result = query.run(
            {"text_embedder": {"text": text}, "ranker": {"query": text}}, include_outputs_from={"retriever"}
        )
        elapsed = time.perf_counter() - start
        first_stage = [doc.id for doc in result["retriever"]["documents"]]
        found = sorted(first_stage.index(i) + 1 for i in relevant if i in first_stage)
        print(f"\nQ: {text}   ({elapsed * 1000:.0f} ms; relevant retrieved at {found or 'none of the 50'})")
        for rank, doc in enumerate(result["ranker"]["documents"], start=1):
            mark = "*" if doc.id in relevant else " "
            label = doc.meta.get("title") or (doc.content or "")[:90]
            print(f" {mark}{rank}. {doc.score:+.3f}  (retrieved #{first_stage.index(doc.id) + 1})  {label}")
    print("\n(* = judged relevant)")
    if model == "sentence-transformers/all-MiniLM-L6-v2":
        print(
            "note: the base all-MiniLM-L6-v2 was never trained for E2Rank's listwise prompt, so this run shows the\n"
            "plumbing (one forward pass per rerank, embeddings reused), not reranking quality; pass a trained E2Rank\n"
            "model (e.g. Alibaba-NLP/E2Rank-0.6B) as `model` in both YAML files for that."
        )


if __name__ == "__main__":
    main()
