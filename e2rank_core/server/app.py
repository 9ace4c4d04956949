"""The ``e2rank serve`` ASGI app: E2Rank reranking and embeddings behind the HTTP shapes existing clients speak.

Example::

    import uvicorn

    from e2rank_core.server import ServerSettings, create_app

    app = create_app("e2rank/minilm-l6-e2rank", ServerSettings(api_key="secret"))  # loads in the lifespan
    uvicorn.run(app, host="127.0.0.1", port=8000)

    # any ASGI server, configured by the environment (E2RANK_MODEL, E2RANK_API_KEY, E2RANK_MAX_QUEUE, ...):
    #   uvicorn --factory e2rank_core.server:app_from_env --port 8000
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..model import E2RankModel, shared_model
from ..resolve import default_model
from ..scoring import RankedDocument, scale_score
from .batching import DynamicBatcher, EmbedJob, InvalidInputError, QueueFullError, RerankJob
from .metrics import MetricsMiddleware, ServerMetrics
from .schemas import (
    AnyRerankRequest,
    ApiVersion,
    BilledUnits,
    CohereEmbedRequest,
    CohereEmbedResponse,
    DocumentItem,
    EmbeddingsByType,
    ErrorResponse,
    Health,
    Meta,
    ModelCard,
    ModelList,
    OpenAIEmbedding,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    RerankDocument,
    RerankRequest,
    RerankRequestV2,
    RerankResponse,
    RerankResult,
    RerankResultDocument,
    TEIRank,
    TEIRerankRequest,
    Usage,
)
from .settings import ServerSettings

if TYPE_CHECKING:
    import numpy as np
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("e2rank.server")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class _ServiceUnavailableError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class _Service:
    """The app's state: settings, the model once loaded, its batcher and metrics."""

    def __init__(self, settings: ServerSettings, model_name: str) -> None:
        self.settings = settings
        self.model_name = model_name
        self.model: E2RankModel | None = None
        self.batcher: DynamicBatcher | None = None
        self.load_error: str | None = None
        self.created = int(time.time())
        self.metrics = ServerMetrics(lambda: self.model)
        self.metrics.queue_depth.set_function(lambda: 0 if self.batcher is None else self.batcher.pending)

    @property
    def served_name(self) -> str:
        return self.settings.served_model_name or self.model_name

    def set_model(self, model: E2RankModel) -> None:
        s = self.settings
        self.batcher = DynamicBatcher(
            model,
            max_batch_size=s.max_batch_size,
            max_wait_ms=s.max_wait_ms,
            max_queue=s.max_queue,
            enabled=s.batching,
            on_batch=self.metrics.observe_batch,
        )
        self.model = model

    async def load(self) -> None:
        try:
            model = await asyncio.to_thread(shared_model, self.model_name, **self.settings.model_kwargs())
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            logger.error("e2rank serve: could not load %s: %s", self.model_name, self.load_error)
            return
        self.set_model(model)
        logger.info("e2rank serve: %r loaded", model)

    def ready(self) -> tuple[E2RankModel, DynamicBatcher]:
        if self.model is None or self.batcher is None:
            state = "failed to load" if self.load_error else "is loading"
            raise _ServiceUnavailableError(f"the model {self.model_name!r} {state}; retry shortly")
        return self.model, self.batcher

    def check_limits(self, texts: Sequence[str], *, query: str | None = None, what: str = "documents") -> None:
        s = self.settings
        if len(texts) > s.max_documents:
            raise InvalidInputError(
                f"{len(texts)} {what} in one request; this service accepts at most {s.max_documents}"
            )
        if query is not None and len(query) > s.max_text_chars:
            raise InvalidInputError(f"the query has {len(query)} characters; the limit is {s.max_text_chars}")
        for i, text in enumerate(texts):
            if len(text) > s.max_text_chars:
                raise InvalidInputError(f"{what}[{i}] has {len(text)} characters; the limit is {s.max_text_chars}")


# ------------------------------------------------------------------------------------------ middleware
class BodyLimitMiddleware:
    """413 for bodies over ``max_body_bytes``: by ``Content-Length`` before reading, and by the bytes streamed."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                if declared is not None and declared > limit:
                    await _error_response(413, f"request body of {declared} bytes exceeds {limit}")(
                        scope, receive, send
                    )
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413, f"request body exceeds {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


def _error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(
        message=message, error={"message": message, "type": _ERROR_TYPES.get(status, "error"), "code": status}
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _describe_validation(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors[:5]:
        loc = ".".join(str(x) for x in error.get("loc", ()) if x != "body")
        msg = error.get("msg", "invalid value")
        if error.get("type") == "json_invalid":
            msg = f"invalid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
            loc = ""
        parts.append(f"{loc}: {msg}" if loc else msg)
    if len(errors) > 5:
        parts.append(f"... {len(errors) - 5} more")
    return "; ".join(parts)


def _install_error_handlers(app: FastAPI, service: _Service) -> None:
    retry = {"Retry-After": str(service.settings.retry_after_s)}

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        return _error_response(status, _describe_validation(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body is not valid UTF-8 JSON"
        return _error_response(exc.status_code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: InvalidInputError) -> JSONResponse:
        return _error_response(422, str(exc))

    @app.exception_handler(QueueFullError)
    async def _queue_full(request: Request, exc: QueueFullError) -> JSONResponse:
        service.metrics.rejected.labels(reason="queue_full").inc()
        return _error_response(429, f"the service is busy: {exc}; retry later", headers=retry)

    @app.exception_handler(_ServiceUnavailableError)
    async def _unavailable(request: Request, exc: _ServiceUnavailableError) -> JSONResponse:
        return _error_response(503, str(exc), headers=retry)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("e2rank serve: internal error on %s", request.url.path)
        return _error_response(500, "internal server error")


# ------------------------------------------------------------------------------------------ helpers
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`, when the service has a key.")


def _service(request: Request) -> _Service:
    return request.app.state.e2rank


async def _require_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> None:
    key = _service(request).settings.api_key
    if key is None:
        return  # no key configured: any bearer token (or none) is accepted
    given = "" if credentials is None else credentials.credentials
    if not hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8")):
        _service(request).metrics.rejected.labels(reason="auth").inc()
        raise StarletteHTTPException(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})


def _split_documents(items: Sequence[DocumentItem]) -> tuple[list[str], list[list[float] | None] | None]:
    texts: list[str] = []
    vectors: list[list[float] | None] = []
    for item in items:
        if isinstance(item, RerankDocument):
            texts.append(item.text)
            vectors.append(item.embedding)
        else:
            texts.append(item)
            vectors.append(None)
    return texts, (vectors if any(v is not None for v in vectors) else None)


async def _rerank(
    service: _Service, query: str, items: Sequence[DocumentItem], max_tokens_per_doc: int | None
) -> tuple[list[RankedDocument[str]], int]:
    model, batcher = service.ready()
    texts, vectors = _split_documents(items)
    service.check_limits(texts, query=query)
    if vectors is not None:
        for i, vector in enumerate(vectors):
            if vector is not None and len(vector) != model.dimension:
                raise InvalidInputError(
                    f"documents[{i}].embedding has {len(vector)} values; {service.served_name!r} produces "
                    f"{model.dimension}-dimensional embeddings (send the vectors this service returned)"
                )
    outcome = await batcher.rerank(RerankJob(query, texts, vectors, max_tokens_per_doc))
    return outcome.ranking, outcome.total_tokens


def _rerank_response(
    service: _Service, ranking: list[RankedDocument[str]], top_n: int | None, return_documents: bool, tokens: int
) -> RerankResponse:
    results = [
        RerankResult(
            index=hit.index,
            relevance_score=scale_score(hit.score),
            document=RerankResultDocument(text=hit.document) if return_documents else None,
        )
        for hit in ranking[:top_n]
    ]
    return RerankResponse(
        id=str(uuid.uuid4()),
        model=service.served_name,
        results=results,
        usage=Usage(total_tokens=tokens),
        meta=Meta(api_version=ApiVersion(version="2"), billed_units=BilledUnits(search_units=1)),
    )


async def _embed(service: _Service, texts: list[str], kind: str) -> tuple[np.ndarray, int]:
    _, batcher = service.ready()
    service.check_limits(texts, what="texts")
    outcome = await batcher.embed(EmbedJob(texts, kind))
    return outcome.vectors, outcome.total_tokens


def _cohere_embed_response(
    texts: list[str], vectors: np.ndarray, tokens: int, *, by_type: bool, version: str
) -> CohereEmbedResponse:
    floats = vectors.tolist()
    meta = Meta(api_version=ApiVersion(version=version), billed_units=BilledUnits(input_tokens=tokens))
    if by_type:
        return CohereEmbedResponse(
            response_type="embeddings_by_type",
            id=str(uuid.uuid4()),
            embeddings=EmbeddingsByType(**{"float": floats}),
            texts=texts,
            meta=meta,
        )
    return CohereEmbedResponse(
        response_type="embeddings_floats", id=str(uuid.uuid4()), embeddings=floats, texts=texts, meta=meta
    )


# ------------------------------------------------------------------------------------------ the app
_DESCRIPTION = """E2Rank reranking and embeddings with one model ([arXiv 2510.22733](https://arxiv.org/abs/2510.22733)).

Rerank in the Cohere v1/v2, Jina/vLLM/Infinity and Hugging Face TEI shapes; embed in the OpenAI and Cohere shapes.
`relevance_score` is `(cos + 1) / 2` of the listwise prompt and each document. Documents embedded through this
service stay in the model's cache, so reranking them later costs one forward pass; a document may also carry its
`embedding` (e2rank extension)."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Invalid JSON or non-UTF-8 body",
        401: "Missing or wrong API key",
        413: "Request body too large",
        422: "Invalid input",
        429: "Too many queued requests (Retry-After)",
        503: "Model not loaded yet (Retry-After)",
    }.items()
}


def create_app(model: E2RankModel | str | None = None, settings: ServerSettings | None = None) -> FastAPI:
    """The service as a FastAPI app.

    Args:
        model: a loaded :class:`E2RankModel` (served at once), a model id or path (loaded in the app's lifespan,
            in a thread; ``/health`` answers 503 until it is loaded), or ``None`` for the default model.
        settings: limits, batching, API key (default ``ServerSettings()``).

    Example::

        from e2rank_core import E2RankModel
        from e2rank_core.server import create_app

        app = create_app(E2RankModel("e2rank/minilm-l6-e2rank"))  # or create_app("e2rank/minilm-l6-e2rank")
    """
    settings = settings or ServerSettings()
    if isinstance(model, E2RankModel):
        service = _Service(settings, model.model_name)
        service.set_model(model)
    elif model is None or isinstance(model, str | os.PathLike):
        service = _Service(settings, os.fspath(model) if model is not None else default_model())
    else:
        raise TypeError(f"model must be an E2RankModel, a model id or None, got {type(model).__name__}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = None
        if service.model is None and service.load_error is None:
            loader = asyncio.create_task(service.load(), name="e2rank-load-model")
        try:
            yield
        finally:
            if loader is not None and not loader.done():
                loader.cancel()
            if service.batcher is not None:
                await service.batcher.aclose()

    app = FastAPI(
        title="e2rank",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.e2rank = service
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    _install_error_handlers(app, service)

    # -------------------------------------------------------------------------------------- open endpoints
    @app.get("/health", response_model=Health, responses={503: {"model": Health}}, tags=["service"])
    async def health() -> JSONResponse:
        """200 once the model is loaded; 503 while it loads or if it failed to load."""
        if service.model is not None:
            return JSONResponse(Health(status="ok", model=service.served_name).model_dump(exclude_none=True))
        status = "error" if service.load_error else "loading"
        body = Health(status=status, model=service.served_name, detail=service.load_error)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -------------------------------------------------------------------------------------- API
    api = APIRouter(dependencies=[Depends(_require_key)])
    exclude_none: dict[str, Any] = {"response_model_exclude_none": True}

    @api.get("/v1/models", response_model=ModelList, tags=["service"])
    async def list_models() -> ModelList:
        """The served model (OpenAI shape)."""
        dimension = None if service.model is None else service.model.dimension
        return ModelList(data=[ModelCard(id=service.served_name, created=service.created, dimension=dimension)])

    @api.post("/v1/rerank", response_model=RerankResponse, tags=["rerank"], **exclude_none)
    async def rerank_v1(body: RerankRequest) -> RerankResponse:
        """Cohere v1 / Jina / vLLM / Infinity rerank: results best first, `relevance_score` in [0, 1]."""
        ranking, tokens = await _rerank(service, body.query, body.documents, body.max_tokens_per_doc)
        return _rerank_response(service, ranking, body.top_n, body.return_documents, tokens)

    @api.post("/v2/rerank", response_model=RerankResponse, tags=["rerank"], **exclude_none)
    async def rerank_v2(body: RerankRequestV2) -> RerankResponse:
        """Cohere v2 rerank (`max_tokens_per_doc` cuts each document before it is embedded)."""
        ranking, tokens = await _rerank(service, body.query, body.documents, body.max_tokens_per_doc)
        return _rerank_response(service, ranking, body.top_n, body.return_documents, tokens)

    @api.post("/rerank", response_model=RerankResponse | list[TEIRank], tags=["rerank"], **exclude_none)
    async def rerank_any(body: AnyRerankRequest) -> RerankResponse | list[TEIRank]:
        """With `texts`: Hugging Face TEI (a bare list, best first). With `documents`: as `/v1/rerank`."""
        if isinstance(body, TEIRerankRequest):
            texts = body.texts
            if body.truncation_direction.lower() == "left":  # keep each text's end instead of its start
                model, _ = service.ready()
                service.check_limits(texts, query=body.query)  # before tokenising anything
                budget = model.max_document_text_tokens
                texts = await asyncio.to_thread(model.truncate_to_tokens, texts, budget, keep="end")
            ranking, _ = await _rerank(service, body.query, texts, None)
            return [
                TEIRank(
                    index=hit.index,
                    score=hit.score if body.raw_scores else scale_score(hit.score),
                    text=body.texts[hit.index] if body.return_text else None,
                )
                for hit in ranking
            ]
        ranking, tokens = await _rerank(service, body.query, body.documents, body.max_tokens_per_doc)
        return _rerank_response(service, ranking, body.top_n, body.return_documents, tokens)

    @api.post("/v1/embeddings", response_model=OpenAIEmbeddingResponse, tags=["embeddings"])
    async def openai_embeddings(body: OpenAIEmbeddingRequest) -> OpenAIEmbeddingResponse:
        """OpenAI embeddings; documents by default (they stay cached for later reranks), `input_type=query`."""
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts:
            raise InvalidInputError("input must hold at least one text")
        model, _ = service.ready()
        if body.dimensions is not None and body.dimensions != model.dimension:
            raise InvalidInputError(f"dimensions={body.dimensions} is not served; this model has {model.dimension}")
        vectors, tokens = await _embed(service, texts, body.input_type)
        if body.encoding_format == "base64":
            data = [
                OpenAIEmbedding(index=i, embedding=base64.b64encode(v.astype("<f4").tobytes()).decode("ascii"))
                for i, v in enumerate(vectors)
            ]
        else:
            data = [OpenAIEmbedding(index=i, embedding=v.tolist()) for i, v in enumerate(vectors)]
        return OpenAIEmbeddingResponse(
            data=data, model=service.served_name, usage=Usage(prompt_tokens=tokens, total_tokens=tokens)
        )

    @api.post("/v1/embed", response_model=CohereEmbedResponse, tags=["embeddings"], **exclude_none)
    async def cohere_embed_v1(body: CohereEmbedRequest) -> CohereEmbedResponse:
        """Cohere v1 embed: `embeddings_floats`, or `embeddings_by_type` when `embedding_types` is given."""
        kind = "query" if body.input_type == "search_query" else "document"
        vectors, tokens = await _embed(service, body.texts, kind)
        return _cohere_embed_response(
            body.texts, vectors, tokens, by_type=body.embedding_types is not None, version="1"
        )

    @api.post("/v2/embed", response_model=CohereEmbedResponse, tags=["embeddings"], **exclude_none)
    async def cohere_embed_v2(body: CohereEmbedRequest) -> CohereEmbedResponse:
        """Cohere v2 embed: `embeddings: {"float": [...]}`."""
        kind = "query" if body.input_type == "search_query" else "document"
        vectors, tokens = await _embed(service, body.texts, kind)
        return _cohere_embed_response(body.texts, vectors, tokens, by_type=True, version="2")

    app.include_router(api)
    return app


def app_from_env() -> FastAPI:
    """Zero-argument factory for any ASGI server: ``uvicorn --factory e2rank_core.server:app_from_env``.

    Reads ``E2RANK_MODEL`` (default: the bundled model) and the :class:`ServerSettings` fields as
    ``E2RANK_<FIELD>`` (``E2RANK_API_KEY``, ``E2RANK_MAX_BATCH_SIZE``, ``E2RANK_BATCHING=0`` ...).
    """
    return create_app(os.environ.get("E2RANK_MODEL") or None, ServerSettings.from_env())
