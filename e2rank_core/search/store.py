"""Qdrant storage for ``e2rank index`` / ``e2rank search``: embedded local mode or a server, with the same code.

Example::

    from e2rank_core.search import open_store

    with open_store(path="/tmp/e2rank-demo") as store:  # embedded: a folder, no server to start
        print(store.collections())
    with open_store(url="http://localhost:6333") as store:  # a Qdrant server or cluster
        print(store.count("demo"))

Layout of a collection: one unnamed vector per point (cosine distance, the model's dimension); the point id is
``uuid5(POINT_NAMESPACE, document id)``, so upserting a document again replaces it instead of duplicating it; the
payload holds ``id``, ``text``, ``title``, ``metadata`` and ``sha1`` (of the embedded content, so an unchanged
document is not re-embedded on a rerun). The collection's Qdrant metadata (``collection metadata``, Qdrant 1.16+)
records under the key ``"e2rank"`` which model and settings made the vectors; searching with another model is an
error (:class:`ModelMismatchError`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from .sources import Document

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from ..model import E2RankModel

#: Namespace of the point ids: ``uuid5(POINT_NAMESPACE, document_id)``.
POINT_NAMESPACE = uuid.UUID("6f1c3a52-9b0e-4d8e-a1f3-5e2b7c9d0e41")
#: Key of e2rank's record in the collection metadata.
METADATA_KEY = "e2rank"
#: Version of the record's layout.
FORMAT_VERSION = 1


class CollectionNotFoundError(ValueError):
    """The collection does not exist in the store."""


class ModelMismatchError(ValueError):
    """The collection's vectors were made by another model (or settings) than the one asked for."""


def point_id(document_id: str) -> str:
    """The Qdrant point id of a document id (a UUID string, stable across runs and machines)."""
    return str(uuid.uuid5(POINT_NAMESPACE, document_id))


def content_hash(content: str) -> str:
    """SHA-1 of the embedded content: an indexed document whose hash is unchanged is not re-embedded."""
    return hashlib.sha1(content.encode("utf-8")).hexdigest()


def model_record(model: E2RankModel) -> dict[str, Any]:
    """What the collection records about the model that made its vectors."""
    backend = model.backend
    return {
        "format_version": FORMAT_VERSION,
        "model": model.model_name,
        "dimension": int(model.dimension),
        "plain_queries": bool(model.plain_queries),
        "max_document_tokens": getattr(backend, "max_document_tokens", None),
        "dtype": str(getattr(backend, "dtype", "")),
    }


@dataclass(frozen=True)
class StoredPoint:
    """A document read back from the store, with its stored vector and (for a query) its similarity score."""

    document: Document
    vector: np.ndarray | None
    score: float | None = None


class SearchStore:
    """A Qdrant client (embedded at ``path`` or a server at ``url``) with e2rank's collection layout.

    Use :func:`open_store` to make one; close it (or use ``with``) to release an embedded store's folder lock.
    """

    def __init__(self, client: QdrantClient, *, location: str) -> None:
        self.client = client
        self.location = location

    # ------------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SearchStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SearchStore({self.location!r})"

    # ------------------------------------------------------------------------------------------- collections
    def collections(self) -> list[str]:
        """Names of the collections in the store."""
        return sorted(c.name for c in self.client.get_collections().collections)

    def exists(self, collection: str) -> bool:
        return bool(self.client.collection_exists(collection))

    def record(self, collection: str) -> dict[str, Any]:
        """The e2rank record of a collection (model, dimension, settings); errors if it is missing."""
        self.require(collection)
        info = self.client.get_collection(collection)
        metadata = info.config.metadata or {}
        record = metadata.get(METADATA_KEY)
        if not isinstance(record, dict) or "model" not in record:
            raise ModelMismatchError(
                f"collection {collection!r} in {self.location} was not written by e2rank index (no e2rank record in "
                "its metadata); index into a new collection or pass recreate=True (--recreate)"
            )
        return record

    def require(self, collection: str) -> None:
        """Raise :class:`CollectionNotFoundError` (listing the existing ones) when ``collection`` is absent."""
        if not self.exists(collection):
            names = ", ".join(self.collections()) or "none"
            raise CollectionNotFoundError(
                f"collection {collection!r} does not exist in {self.location} (collections there: {names}); "
                "create it with e2rank index"
            )

    def check_model(self, collection: str, model: E2RankModel) -> dict[str, Any]:
        """The collection's record, once ``model`` is checked to be the one that made its vectors (else an error)."""
        record = self.record(collection)
        if record["model"] != model.model_name or int(record["dimension"]) != model.dimension:
            raise ModelMismatchError(
                f"collection {collection!r} was indexed with model {record['model']!r} (dimension "
                f"{record['dimension']}), not {model.model_name!r} (dimension {model.dimension}); search it with "
                f"--model {record['model']} (or no --model), or re-index with --recreate"
            )
        return record

    def ensure_collection(self, collection: str, model: E2RankModel, *, recreate: bool = False) -> None:
        """Create the collection for ``model`` (cosine, its dimension, the record), or check an existing one."""
        from qdrant_client import models

        if recreate and self.exists(collection):
            self.client.delete_collection(collection)
        if self.exists(collection):
            self.check_model(collection, model)
            return
        self.client.create_collection(
            collection,
            vectors_config=models.VectorParams(size=model.dimension, distance=models.Distance.COSINE),
            metadata={METADATA_KEY: model_record(model)},
        )

    def delete(self, collection: str) -> None:
        self.require(collection)
        self.client.delete_collection(collection)

    def count(self, collection: str) -> int:
        """Number of documents (points) in the collection."""
        self.require(collection)
        return int(self.client.count(collection, exact=True).count)

    # ------------------------------------------------------------------------------------------- points
    def upsert(self, collection: str, documents: Sequence[Document], vectors: np.ndarray) -> None:
        """Insert or replace documents with their vectors (idempotent: the point id comes from the document id)."""
        from qdrant_client import models

        if len(documents) != len(vectors):
            raise ValueError(f"{len(documents)} documents but {len(vectors)} vectors")
        points = [
            models.PointStruct(
                id=point_id(doc.id),
                vector=np.asarray(vector, dtype=np.float32).tolist(),
                payload={
                    "id": doc.id,
                    "text": doc.text,
                    "title": doc.title,
                    "metadata": doc.metadata,
                    "sha1": content_hash(doc.content),
                },
            )
            for doc, vector in zip(documents, vectors, strict=True)
        ]
        self.client.upsert(collection, points=points, wait=True)

    def stored_hashes(self, collection: str, document_ids: Sequence[str]) -> dict[str, str]:
        """Document id -> content hash, for the given ids that are already in the collection."""
        if not document_ids:
            return {}
        points = self.client.retrieve(
            collection, ids=[point_id(d) for d in document_ids], with_payload=["id", "sha1"], with_vectors=False
        )
        return {str(p.payload["id"]): str(p.payload.get("sha1", "")) for p in points if p.payload}

    def fetch(self, collection: str, document_ids: Sequence[str], *, with_vectors: bool = True) -> list[StoredPoint]:
        """Read documents back by id, in the given order; ids that are not stored raise ``KeyError``."""
        self.require(collection)
        points = self.client.retrieve(
            collection, ids=[point_id(d) for d in document_ids], with_payload=True, with_vectors=with_vectors
        )
        by_id = {str(p.payload["id"]): _stored(p) for p in points if p.payload}
        missing = [d for d in document_ids if d not in by_id]
        if missing:
            raise KeyError(f"{len(missing)} document ids are not in collection {collection!r}, e.g. {missing[0]!r}")
        return [by_id[d] for d in document_ids]

    def query(self, collection: str, vectors: np.ndarray, limit: int) -> list[list[StoredPoint]]:
        """The ``limit`` nearest documents of each query vector (cosine), best first, with their stored vectors."""
        from qdrant_client import models

        matrix = np.asarray(vectors, dtype=np.float32)
        requests = [
            models.QueryRequest(query=row.tolist(), limit=limit, with_payload=True, with_vector=True) for row in matrix
        ]
        responses = self.client.query_batch_points(collection, requests=requests)
        return [[_stored(p) for p in response.points] for response in responses]

    def iter_documents(self, collection: str, batch: int = 256) -> Iterator[Document]:
        """Every stored document (no vectors), in the store's order."""
        self.require(collection)
        offset = None
        while True:
            points, offset = self.client.scroll(
                collection, limit=batch, offset=offset, with_payload=True, with_vectors=False
            )
            for p in points:
                yield _stored(p).document
            if offset is None:
                return


def _stored(point: Any) -> StoredPoint:
    payload = point.payload or {}
    document = Document(
        id=str(payload.get("id", point.id)),
        text=str(payload.get("text", "")),
        title=str(payload.get("title", "")),
        metadata=dict(payload.get("metadata") or {}),
    )
    vector = None if point.vector is None else np.asarray(point.vector, dtype=np.float32)
    return StoredPoint(document=document, vector=vector, score=getattr(point, "score", None))


def open_store(path: str | Path | None = None, *, url: str | None = None, api_key: str | None = None) -> SearchStore:
    """Open an embedded store at ``path`` (a folder, created if needed) or a Qdrant server at ``url``.

    Example::

        store = open_store(path="/tmp/e2rank-demo")  # or open_store(url="http://localhost:6333")
        try:
            print(store.collections())
        finally:
            store.close()

    An embedded store is locked by one client at a time: a second opener gets a ``ValueError`` saying so. A server
    URL is contacted at once, so an unreachable server is a ``ConnectionError`` here.
    """
    from qdrant_client import QdrantClient

    if (path is None) == (url is None):
        raise ValueError("give exactly one of path= (embedded store folder) or url= (Qdrant server)")
    if url is not None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        client = QdrantClient(url=url, api_key=api_key)
        store = SearchStore(client, location=url)
        try:
            store.collections()
        except Exception as exc:  # httpx / grpc errors differ by transport; all mean the server is not usable
            client.close()
            raise ConnectionError(f"cannot reach the Qdrant server at {url}: {exc}") from exc
        return store
    folder = Path(path)  # type: ignore[arg-type]
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"store path {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        client = QdrantClient(path=str(folder))
    except RuntimeError as exc:
        raise ValueError(f"cannot open the store {folder}: {exc}") from exc
    return SearchStore(client, location=str(folder))
