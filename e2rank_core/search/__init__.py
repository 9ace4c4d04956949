"""End-to-end search with one model: index documents into Qdrant, retrieve with the query embedding, rerank with E2Rank.

Example::

    from e2rank_core.search import index, open_store, search

    with open_store(path="/tmp/e2rank-demo") as store:  # embedded Qdrant; open_store(url=...) for a server
        index(store, "demo", "examples/search/docs")  # idempotent: a rerun embeds only new or changed documents
        for hit in search(store, "demo", "how do bees find flowers?", top_k=3):
            print(hit.rank, f"{hit.score:+.3f}", hit.id)

Search embeds the query (``model.embed_queries``), asks Qdrant for the ``candidates`` nearest documents *with their
stored vectors*, and reranks them with ``model.rerank(query, texts, document_embeddings=vectors)``: no document is
encoded again, so the rerank is one forward pass (the listwise prompt). :func:`search_batch` does the same for many
queries with shared forward passes (``model.rerank_batch``).

The collection records the model that made its vectors: :func:`search` without ``model`` loads that model, and
with another model raises :class:`ModelMismatchError`. Needs ``pip install "e2rank[search]"`` (qdrant-client).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .sources import Document, SourceFormat, read_queries, read_source, split_passages
from .store import (
    CollectionNotFoundError,
    ModelMismatchError,
    SearchStore,
    StoredPoint,
    content_hash,
    open_store,
    point_id,
)

if TYPE_CHECKING:
    from ..model import E2RankModel

__all__ = [
    "CollectionNotFoundError",
    "Document",
    "IndexReport",
    "ModelMismatchError",
    "SearchHit",
    "SearchStore",
    "index",
    "open_store",
    "point_id",
    "read_queries",
    "read_source",
    "rerank_stored",
    "search",
    "search_batch",
    "split_passages",
]

logger = logging.getLogger(__name__)

StoreLike = SearchStore | str | Path


@dataclass(frozen=True)
class IndexReport:
    """What :func:`index` did: documents read, embedded (new or changed), unchanged (skipped), points after."""

    collection: str
    model: str
    documents: int
    embedded: int
    unchanged: int
    points: int
    seconds: float


@dataclass(frozen=True)
class SearchHit:
    """One search result, best first.

    ``score`` is the E2Rank score (cosine to the listwise prompt) after a rerank, else the retrieval cosine;
    ``retrieval_score`` is always the retrieval cosine from Qdrant.
    """

    rank: int
    id: str
    score: float
    retrieval_score: float
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": round(self.score, 6),
            "retrieval_score": round(self.retrieval_score, 6),
            "title": self.title,
            "text": self.text,
            "metadata": self.metadata,
        }


@contextmanager
def _opened(store: StoreLike) -> Iterator[SearchStore]:
    """Use a given store as is; open (and close afterwards) an embedded store given by its folder."""
    if isinstance(store, SearchStore):
        yield store
        return
    if not isinstance(store, str | Path):
        raise TypeError(f"store must be a SearchStore (open_store(...)) or a folder path, got {type(store).__name__}")
    opened = open_store(path=store)
    try:
        yield opened
    finally:
        opened.close()


def _load_model(model: E2RankModel | str | None, record: dict[str, Any] | None = None) -> E2RankModel:
    from ..model import E2RankModel, shared_model
    from ..resolve import default_model

    if isinstance(model, E2RankModel):
        return model
    if model is not None and not isinstance(model, str):
        raise TypeError(f"model must be an E2RankModel, a model id or None, got {type(model).__name__}")
    name = model or (record["model"] if record else default_model())
    settings: dict[str, Any] = {}
    if record is not None and record.get("plain_queries"):
        settings["plain_queries"] = True
    return shared_model(name, **settings)


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def index(
    store: StoreLike,
    collection: str,
    source: str | Path | Iterable[Document],
    *,
    model: E2RankModel | str | None = None,
    source_format: SourceFormat = "auto",
    passage_words: int | None = None,
    batch_size: int = 256,
    recreate: bool = False,
    show_progress: bool = False,
) -> IndexReport:
    """Embed the documents of ``source`` and upsert them into ``collection`` (created for the model if absent).

    Example::

        from e2rank_core.search import index

        report = index("/tmp/e2rank-demo", "scifact", "../shared/data/scifact")  # an embedded store's folder
        print(report.points, report.embedded, report.seconds)

    ``source`` is a path (see :func:`read_source`: BEIR corpus, JSONL, folder of .txt/.md) or ``Document`` objects.
    Idempotent: point ids derive from document ids, and a document whose stored content hash is unchanged is not
    embedded again, so rerunning after an interruption finishes the job. Indexing into a collection made by another
    model raises :class:`ModelMismatchError` unless ``recreate=True`` (which drops the collection first).
    ``model=None`` uses the collection's recorded model when it exists, else the default model.
    """
    from tqdm.auto import tqdm

    _check_positive("batch_size", batch_size)
    if not isinstance(collection, str) or not collection.strip():
        raise ValueError("collection must be a non-empty name")
    if isinstance(source, str | Path):
        documents = read_source(source, source_format=source_format, passage_words=passage_words)
    else:
        documents = list(source)
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise TypeError(f"source[{i}] must be a Document, got {type(doc).__name__}")
        documents = [d for d in documents if d.content]
        if not documents:
            raise ValueError("source holds no document with text")
        if len({d.id for d in documents}) != len(documents):
            raise ValueError("source has duplicate document ids; ids must be unique")
    start = time.perf_counter()
    with _opened(store) as opened:
        record = opened.record(collection) if opened.exists(collection) and not recreate and model is None else None
        loaded = _load_model(model, record)
        opened.ensure_collection(collection, loaded, recreate=recreate)
        embedded = 0
        progress = tqdm(total=len(documents), desc=f"e2rank index {collection}", unit="doc", disable=not show_progress)
        with progress:
            for offset in range(0, len(documents), batch_size):
                batch = documents[offset : offset + batch_size]
                stored = opened.stored_hashes(collection, [d.id for d in batch])
                changed = [d for d in batch if stored.get(d.id) != content_hash(d.content)]
                if changed:
                    vectors = loaded.embed_documents([d.content for d in changed], show_progress_bar=False)
                    opened.upsert(collection, changed, vectors)
                    embedded += len(changed)
                progress.update(len(batch))
        points = opened.count(collection)
    return IndexReport(
        collection=collection,
        model=loaded.model_name,
        documents=len(documents),
        embedded=embedded,
        unchanged=len(documents) - embedded,
        points=points,
        seconds=time.perf_counter() - start,
    )


def rerank_stored(
    model: E2RankModel,
    queries: Sequence[str],
    candidates: Sequence[Sequence[StoredPoint]],
    *,
    top_k: int | None = None,
    num_input_docs: int | None = None,
) -> list[list[SearchHit]]:
    """Rerank stored candidates (each with its stored vector) with E2Rank, reusing the vectors: one prompt per query.

    Example (BM25 candidates, vectors read back from the store)::

        points = store.fetch("scifact", bm25_ids)  # StoredPoint(document, vector)
        hits = rerank_stored(model, ["query text"], [points], top_k=10)[0]
    """
    if isinstance(queries, str):
        raise TypeError("queries must be a list of strings, not a single string")
    if len(queries) != len(candidates):
        raise ValueError(f"{len(candidates)} candidate lists for {len(queries)} queries")
    texts = [[p.document.content for p in points] for points in candidates]
    vectors: list[np.ndarray | None] = []
    for points in candidates:
        if any(p.vector is None for p in points):
            raise ValueError("every candidate needs its stored vector (read them with with_vectors=True)")
        vectors.append(np.stack([p.vector for p in points]) if points else None)  # type: ignore[misc]
    ranked = model.rerank_batch(
        list(queries),
        texts,
        top_k=top_k,
        document_embeddings=vectors,
        # the prompt holds the best candidates by retrieval score; points read by id (no score) keep their order
        first_stage_scores=[[p.score for p in points] for points in candidates],
        num_input_docs=num_input_docs,
    )
    return [
        [_hit(rank, points[r.index], r.score) for rank, r in enumerate(results, start=1)]
        for results, points in zip(ranked, candidates, strict=True)
    ]


def _hit(rank: int, point: StoredPoint, score: float) -> SearchHit:
    doc = point.document
    retrieval = float(point.score) if point.score is not None else float("nan")
    return SearchHit(rank, doc.id, float(score), retrieval, doc.text, doc.title, doc.metadata)


def search(
    store: StoreLike,
    collection: str,
    query: str,
    *,
    model: E2RankModel | str | None = None,
    top_k: int = 10,
    candidates: int = 100,
    rerank: bool = True,
    num_input_docs: int | None = None,
) -> list[SearchHit]:
    """Retrieve ``candidates`` documents for ``query`` from Qdrant and rerank them with E2Rank; best ``top_k`` first.

    Example::

        from e2rank_core.search import search

        for hit in search("/tmp/e2rank-demo", "demo", "how do bees find flowers?", top_k=3):
            print(hit.rank, round(hit.score, 3), hit.id, hit.text[:60])

    ``rerank=False`` returns the retrieval order (Qdrant's cosine). ``model=None`` loads the collection's model;
    another model raises :class:`ModelMismatchError`; a missing collection :class:`CollectionNotFoundError`.
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    return search_batch(
        store,
        collection,
        [query],
        model=model,
        top_k=top_k,
        candidates=candidates,
        rerank=rerank,
        num_input_docs=num_input_docs,
    )[0]


def search_batch(
    store: StoreLike,
    collection: str,
    queries: Sequence[str],
    *,
    model: E2RankModel | str | None = None,
    top_k: int = 10,
    candidates: int = 100,
    rerank: bool = True,
    num_input_docs: int | None = None,
) -> list[list[SearchHit]]:
    """:func:`search` for many queries: one batched query embedding, one Qdrant batch query, one ``rerank_batch``.

    Example::

        from e2rank_core.search import search_batch

        runs = search_batch("/tmp/e2rank-demo", "demo", ["bees and flowers", "tides"], top_k=5)
    """
    if isinstance(queries, str):
        raise TypeError("queries must be a list of strings, not a single string; use search() for one query")
    queries = list(queries)
    for i, q in enumerate(queries):
        if not isinstance(q, str):
            raise TypeError(f"queries[{i}] must be a string, got {type(q).__name__}")
        if not q.strip():
            raise ValueError(f"queries[{i}] is empty")
    _check_positive("top_k", top_k)
    _check_positive("candidates", candidates)
    if not queries:
        return []
    with _opened(store) as opened:
        record = opened.record(collection)
        loaded = _load_model(model, record)
        opened.check_model(collection, loaded)
        query_vectors = loaded.embed_queries(queries, plain=bool(record.get("plain_queries", False)))
        limit = max(candidates, top_k) if rerank else top_k
        retrieved = opened.query(collection, query_vectors, limit)
    if not rerank:
        return [
            [_hit(rank, p, p.score if p.score is not None else 0.0) for rank, p in enumerate(points, start=1)]
            for points in retrieved
        ]
    return rerank_stored(loaded, queries, retrieved, top_k=top_k, num_input_docs=num_input_docs)
