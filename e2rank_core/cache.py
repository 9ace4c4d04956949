"""A bounded, thread-safe LRU cache of embeddings keyed by (model, settings, text) and by the token ids embedded."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np


class EmbeddingCache:
    """Least-recently-used store of embedding vectors.

    Keys hash the text (so huge documents are not kept twice in memory) together with a namespace that
    names the model and every setting that changes an embedding. ``max_entries=0`` disables caching. The model
    stores each vector under two keys (its text and its token ids, sharing one array), so texts that tokenise
    alike get the same vector whatever was embedded before.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 0:
            raise ValueError(f"cache_size must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._store: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(namespace: str, text: str) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(namespace.encode("utf-8"))
        digest.update(b"\x00")
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.digest()

    def get(self, key: bytes, *, count: bool = True) -> np.ndarray | None:
        """The vector stored under ``key`` (read-only), or ``None``; ``count=False`` leaves hits/misses alone."""
        if self.max_entries == 0:
            return None
        with self._lock:
            vector = self._store.get(key)
            if vector is None:
                self.misses += count
                return None
            self._store.move_to_end(key)
            self.hits += count
            return vector

    def put(self, key: bytes, vector: np.ndarray) -> np.ndarray:
        """Store a read-only float32 copy of ``vector`` (or ``vector`` itself if it is one already); return it."""
        stored = vector
        if not (isinstance(vector, np.ndarray) and vector.dtype == np.float32 and _owned_read_only(vector)):
            stored = np.array(vector, dtype=np.float32, copy=True)
            stored.setflags(write=False)  # callers get read-only views, so a cached vector cannot be corrupted
        if self.max_entries == 0:
            return stored
        with self._lock:
            self._store[key] = stored
            self._store.move_to_end(key)
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)
        return stored

    def clear(self) -> None:
        with self._lock:
            self._store.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._store)


def _owned_read_only(array: np.ndarray) -> bool:
    """A read-only array that owns its memory: nothing else can write to it, so it may be shared as it is."""
    return not array.flags.writeable and array.base is None
