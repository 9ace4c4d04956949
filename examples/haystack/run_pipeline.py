"""Haystack: index a small real corpus and rerank with E2Rank, both pipelines loaded from YAML.

Run: ``python examples/haystack/run_pipeline.py`` (offline, on the packaged all-MiniLM-L6-v2).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import load_corpus
from haystack import Document, Pipeline

HERE = Path(__file__).resolve().parent

corpus = load_corpus()
indexing = Pipeline.loads((HERE / "indexing.yaml").read_text())  # no unsafe flags, no allowlist
query = Pipeline.loads((HERE / "query.yaml").read_text())

documents = [Document(id=d["id"], content=d["text"], meta={"title": d["title"]}) for d in corpus.documents]
written = indexing.run({"embedder": {"documents": documents}})["writer"]["documents_written"]
print(f"indexed {written} {corpus.name} documents")

for text, relevant in corpus.queries:
    result = query.run({"text_embedder": {"text": text}, "ranker": {"query": text}})
    print(f"\nQ: {text}")
    for rank, doc in enumerate(result["ranker"]["documents"], start=1):
        mark = "*" if doc.id in relevant else " "
        print(f" {mark}{rank}. {doc.score:+.3f}  {doc.meta.get('title') or doc.content[:90]}")
print("\n(* = judged relevant)")
