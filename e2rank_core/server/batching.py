"""Dynamic batching: concurrent rerank and embedding requests share forward passes of the one loaded model.

Requests are queued; a worker takes the first, waits at most ``max_wait_ms`` for more (up to ``max_batch_size``),
and runs the whole batch in one model thread: every rerank of the batch in one ``rerank_batch`` call (documents and
listwise prompts embedded together), every document text in one ``embed_documents`` call. The event loop never
runs the model. A request's result does not depend on its batch mates: each query gets its own prompt, documents
are embedded independently (and cached), and a bad request in a batch fails alone.

Example::

    import asyncio

    from e2rank_core import E2RankModel
    from e2rank_core.server.batching import DynamicBatcher, RerankJob

    async def main():
        batcher = DynamicBatcher(E2RankModel("e2rank/minilm-l6-e2rank"), max_batch_size=16, max_wait_ms=5)
        jobs = [RerankJob("capital of France", ["Paris is in France.", "Berlin is in Germany."])] * 3
        outcomes = await asyncio.gather(*(batcher.rerank(job) for job in jobs))  # one shared model call
        print(outcomes[0].ranking[0])
        await batcher.aclose()

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..scoring import RankedDocument

if TYPE_CHECKING:
    from ..model import E2RankModel

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """More requests are waiting for the model than ``max_queue`` allows (HTTP 429)."""


class InvalidInputError(ValueError):
    """The model refused a request's input (the core's ``ValueError`` / ``TypeError``; HTTP 422)."""


@dataclass
class RerankJob:
    """One rerank request: the query, the texts, and the caller's embeddings where it sent them.

    ``embeddings`` is ``None`` or one entry per document: a vector (e.g. from this service's embed endpoints) or
    ``None`` (encode it). ``max_tokens_per_doc`` cuts the document texts before they are embedded or prompted.
    """

    query: str
    documents: list[str]
    embeddings: list[list[float] | None] | None = None
    max_tokens_per_doc: int | None = None


@dataclass
class RerankOutcome:
    ranking: list[RankedDocument[str]]
    total_tokens: int


@dataclass
class EmbedJob:
    texts: list[str]
    kind: str  # "document" or "query"


@dataclass
class EmbedOutcome:
    vectors: np.ndarray
    total_tokens: int


@dataclass
class _Pending:
    job: RerankJob | EmbedJob
    future: asyncio.Future[Any] = field(repr=False)


# ------------------------------------------------------------------------------------------ model-side work
def run_rerank_jobs(model: E2RankModel, jobs: Sequence[RerankJob]) -> list[RerankOutcome]:
    """Rerank every job with one ``rerank_batch`` call (blocking; runs in the model thread).

    Documents that came with a vector are not encoded (the core validates and reuses it); the others are encoded
    together, or found in the model's cache.
    """
    doc_lists, totals = [], []
    for job in jobs:
        documents = job.documents
        if job.max_tokens_per_doc is not None:
            documents = model.truncate_to_tokens(documents, job.max_tokens_per_doc)
        doc_lists.append(documents)
        totals.append(sum(model.count_tokens([job.query, *documents])))
    rankings = model.rerank_batch(
        [job.query for job in jobs], doc_lists, document_embeddings=[job.embeddings for job in jobs]
    )
    outcomes = []
    for job, ranking, total in zip(jobs, rankings, totals, strict=True):
        # Report the documents as the caller sent them, not cut to max_tokens_per_doc.
        ranked = [RankedDocument(hit.index, hit.score, job.documents[hit.index]) for hit in ranking]
        outcomes.append(RerankOutcome(ranked, total))
    return outcomes


def run_embed_jobs(model: E2RankModel, jobs: Sequence[EmbedJob]) -> list[EmbedOutcome]:
    """Embed every job, documents in one call and queries in one call (blocking; runs in the model thread)."""
    outcomes: list[EmbedOutcome | None] = [None] * len(jobs)
    for kind in ("document", "query"):
        members = [i for i, job in enumerate(jobs) if job.kind == kind]
        if not members:
            continue
        texts = [t for i in members for t in jobs[i].texts]
        vectors = model.embed_documents(texts) if kind == "document" else model.embed_queries(texts)
        start = 0
        for i in members:
            n = len(jobs[i].texts)
            outcomes[i] = EmbedOutcome(vectors[start : start + n], sum(model.count_tokens(jobs[i].texts)))
            start += n
    return outcomes  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ the batcher
class DynamicBatcher:
    """Gathers concurrent jobs into shared model calls, off the event loop.

    Args:
        model: the loaded model.
        max_batch_size: most jobs per model call.
        max_wait_ms: how long the first job of a batch waits for more.
        max_queue: most jobs accepted at once (queued or running); beyond it :class:`QueueFullError`.
        enabled: ``False`` runs each job alone, as it comes (the baseline of the benchmark).
        on_batch: called with ``(kind, size)`` for every model call (metrics).
    """

    def __init__(
        self,
        model: E2RankModel,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 512,
        enabled: bool = True,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.enabled = enabled
        self.on_batch = on_batch
        self.pending = 0
        # One model thread: the model runs one forward pass at a time anyway, and the loop stays free.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="e2rank-model")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def rerank(self, job: RerankJob) -> RerankOutcome:
        """Rerank one job; may share its forward passes with concurrent jobs."""
        return await self._submit(job)

    async def embed(self, job: EmbedJob) -> EmbedOutcome:
        """Embed one job's texts; may share its forward passes with concurrent jobs."""
        return await self._submit(job)

    async def _submit(self, job: RerankJob | EmbedJob) -> Any:
        if self.pending >= self.max_queue:
            raise QueueFullError(f"{self.pending} requests are already waiting for the model (max_queue)")
        self.pending += 1
        try:
            if not self.enabled:
                loop = asyncio.get_running_loop()
                self._record(_kind(job), 1)
                return (await loop.run_in_executor(self._executor, _run_alone, self.model, job))[0]
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._ensure_worker()
            assert self._queue is not None
            self._queue.put_nowait(_Pending(job, future))
            return await future
        finally:
            self.pending -= 1

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="e2rank-batcher")

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch_size:
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        batch.append(queue.get_nowait())
                    else:
                        batch.append(await asyncio.wait_for(queue.get(), remaining))
                except (asyncio.QueueEmpty, TimeoutError):
                    break
            batch = [p for p in batch if not p.future.done()]  # the client went away
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        for kind in ("rerank", "embed"):
            members = [p for p in batch if _kind(p.job) == kind]
            if not members:
                continue
            self._record(kind, len(members))
            try:
                results = await loop.run_in_executor(
                    self._executor, _run_together, self.model, [p.job for p in members]
                )
            except asyncio.CancelledError:
                for p in members:
                    p.future.cancel()
                raise
            except Exception as exc:  # deliver every failure to its request, never kill the worker
                for p in members:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, result in zip(members, results, strict=True):
                if p.future.done():
                    continue
                if isinstance(result, BaseException):
                    p.future.set_exception(result)
                else:
                    p.future.set_result(result)

    def _record(self, kind: str, size: int) -> None:
        if self.on_batch is not None:
            self.on_batch(kind, size)

    async def aclose(self) -> None:
        """Stop the worker (after in-flight work) and the model thread."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)


def _kind(job: RerankJob | EmbedJob) -> str:
    return "rerank" if isinstance(job, RerankJob) else "embed"


def _call(model: E2RankModel, jobs: list[Any]) -> list[Any]:
    try:
        if isinstance(jobs[0], RerankJob):
            return run_rerank_jobs(model, jobs)
        return run_embed_jobs(model, jobs)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(str(exc)) from exc


def _run_alone(model: E2RankModel, job: RerankJob | EmbedJob) -> list[Any]:
    return _call(model, [job])


def _run_together(model: E2RankModel, jobs: list[Any]) -> list[Any]:
    """One shared call; if the model refuses the batch, each job alone, so a bad job fails only itself."""
    try:
        return _call(model, jobs)
    except InvalidInputError:
        if len(jobs) == 1:
            raise
    results: list[Any] = []
    for job in jobs:
        try:
            results.extend(_call(model, [job]))
        except InvalidInputError as exc:
            results.append(exc)
    return results
