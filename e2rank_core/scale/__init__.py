"""Scale-out: ``e2rank embed`` and ``e2rank rerank-run`` on one process (``local``) or a Ray cluster (``ray``).

Both engines read the same inputs, call the same model functions per batch and write through the same formatting
functions, so their outputs agree (same ids, same order, scores within float noise).

Example::

    from e2rank_core.scale import EngineOptions, embed, rerank_run

    embed("../shared/data/scifact/corpus.jsonl", "scifact.parquet")                        # one process
    embed("../shared/data/scifact/corpus.jsonl", "scifact.parquet", engine="ray",
          options=EngineOptions(workers=2))                                                   # Ray Data actors
    rerank_run("../shared/data/trec-dl-2019", "../shared/data/trec-dl-2019/bm25_top100.trec", "dl19.trec",
               depth=100, embeddings="dl19.parquet", engine="ray", options=EngineOptions(workers=2))

Nothing here imports Ray until a Ray engine runs.
"""

from __future__ import annotations

from .api import embed, rerank_candidates, rerank_run
from .common import BadRecordError, EngineOptions, ScaleError

__all__ = ["BadRecordError", "EngineOptions", "ScaleError", "embed", "rerank_candidates", "rerank_run"]
