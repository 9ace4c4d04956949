"""Request and response models of ``e2rank serve``, in the shapes existing clients send and read.

FastAPI validates every request against these models (wrong types, empty queries, ``top_n <= 0`` ... become a 4xx
with a JSON body) and publishes them in the OpenAPI page at ``/docs``. Field names follow the clients' own SDKs:
Cohere v1/v2 (``cohere``), Jina / vLLM / Infinity (Cohere v1 shape plus ``model`` and ``usage``), Hugging Face TEI
(``texts`` in, a bare list out) and OpenAI embeddings. Unknown request fields are ignored, as the real services do.

Example::

    from e2rank_core.server.schemas import RerankRequest

    request = RerankRequest(query="capital of France", documents=["Paris is ...", {"text": "Berlin is ..."}], top_n=1)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, PositiveInt, Tag


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


#: A query: a string with at least one non-space character.
Query = Annotated[str, AfterValidator(_non_blank), Field(description="The search query (non-empty).")]


class _Request(BaseModel):
    # Fields the clients send that e2rank does not use (priority, rank_fields, ...) are accepted and ignored;
    # NaN and infinities are refused in every float (JSON has none, Python's json module would accept them).
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------------------------------- rerank
class RerankDocument(_Request):
    """A document object: ``text`` plus, as an e2rank extension, the ``embedding`` this service returned for it."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    text: str = Field(description="The document text.")
    embedding: list[float] | None = Field(
        default=None,
        description="e2rank extension: the document's embedding from this service's embed endpoints "
        "(input type document). Given, the document is not re-encoded.",
    )


DocumentItem = str | RerankDocument


class RerankRequest(_Request):
    """Cohere v1 / Jina / vLLM / Infinity rerank request (``POST /v1/rerank``, ``POST /rerank`` with ``documents``)."""

    query: Query
    documents: list[DocumentItem] = Field(min_length=1, description="Strings or objects with a `text` field.")
    top_n: PositiveInt | None = Field(default=None, description="Return only the best N (default: all).")
    return_documents: bool = Field(default=False, description="Include each document's text in the results.")
    model: str | None = Field(default=None, description="Ignored beyond reporting: the service serves one model.")
    max_tokens_per_doc: PositiveInt | None = Field(default=None, description="Cut each document to this many tokens.")
    rank_fields: list[str] | None = Field(default=None, description="Accepted for compatibility; `text` is ranked.")
    max_chunks_per_doc: PositiveInt | None = Field(default=None, description="Accepted for compatibility; unused.")


class RerankRequestV2(_Request):
    """Cohere v2 rerank request (``POST /v2/rerank``)."""

    model: str | None = Field(default=None, description="Ignored beyond reporting: the service serves one model.")
    query: Query
    documents: list[DocumentItem] = Field(min_length=1, description="Strings (or e2rank's `{text, embedding}`).")
    top_n: PositiveInt | None = Field(default=None, description="Return only the best N (default: all).")
    max_tokens_per_doc: PositiveInt | None = Field(
        default=None, description="Cut each document to this many tokens (Cohere's default, 4096, when null)."
    )
    return_documents: bool = Field(default=False, description="Include each document's text in the results.")


class TEIRerankRequest(_Request):
    """Hugging Face Text Embeddings Inference rerank request (``POST /rerank`` with ``texts``)."""

    query: Query
    texts: list[str] = Field(min_length=1, description="The candidate texts.")
    raw_scores: bool = Field(default=False, description="Cosine in [-1, 1] instead of the [0, 1] score.")
    return_text: bool = Field(default=False, description="Include each text in the results.")
    truncate: bool = Field(default=False, description="Accepted; long texts are always cut to the model's limit.")
    truncation_direction: Literal["right", "Right", "left", "Left"] = Field(
        default="right", description="`right` cuts a long text's end (the model's own cut); `left` keeps its end."
    )


def _rerank_shape(body: Any) -> str:
    if isinstance(body, dict) and "texts" in body and "documents" not in body:
        return "tei"
    return "cohere"


#: ``POST /rerank``: a body with ``texts`` is TEI-shaped, anything else Cohere/Jina-shaped.
AnyRerankRequest = Annotated[
    Annotated[RerankRequest, Tag("cohere")] | Annotated[TEIRerankRequest, Tag("tei")],
    Discriminator(_rerank_shape),
]


class RerankResultDocument(_Response):
    text: str


class RerankResult(_Response):
    index: int = Field(description="Position of the document in the request.")
    relevance_score: float = Field(description="(cos + 1) / 2 of the listwise prompt and the document, in [0, 1].")
    document: RerankResultDocument | None = Field(default=None, description="Present when `return_documents`.")


class ApiVersion(_Response):
    version: str


class BilledUnits(_Response):
    search_units: int | None = None
    input_tokens: int | None = None


class Meta(_Response):
    api_version: ApiVersion
    billed_units: BilledUnits | None = None


class Usage(_Response):
    prompt_tokens: int | None = None
    total_tokens: int


class RerankResponse(_Response):
    """Cohere v1/v2 response, with Jina/vLLM's ``model`` and ``usage``; results best first."""

    id: str
    model: str
    results: list[RerankResult]
    usage: Usage
    meta: Meta


class TEIRank(_Response):
    index: int
    score: float = Field(description="(cos + 1) / 2, or the cosine itself with `raw_scores`.")
    text: str | None = None


# --------------------------------------------------------------------------------------------------- embeddings
class OpenAIEmbeddingRequest(_Request):
    """OpenAI ``POST /v1/embeddings``; ``input_type`` is an e2rank extension."""

    input: str | list[str] = Field(description="One text or a list of texts (token arrays are not accepted).")
    model: str | None = None
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="`base64`: little-endian float32 bytes, as OpenAI sends them."
    )
    dimensions: PositiveInt | None = Field(default=None, description="Must equal the model's dimension if given.")
    user: str | None = None
    input_type: Literal["document", "query"] = Field(
        default="document",
        description="e2rank extension: `document` (default; kept in the cache for later reranks) or `query` "
        "(the retrieval query format).",
    )


class OpenAIEmbedding(_Response):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class OpenAIEmbeddingResponse(_Response):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: Usage


CohereInputType = Literal["search_document", "search_query", "classification", "clustering"]


class CohereEmbedRequest(_Request):
    """Cohere ``POST /v1/embed`` and ``/v2/embed`` (text only)."""

    texts: list[str] = Field(min_length=1, description="The texts to embed.")
    model: str | None = None
    input_type: CohereInputType | None = Field(
        default=None,
        description="`search_query` embeds retrieval queries; anything else (default) embeds documents.",
    )
    embedding_types: list[Literal["float"]] | None = Field(default=None, description="Only `float` is served.")
    truncate: Literal["NONE", "START", "END"] | None = Field(
        default=None, description="Accepted; texts are cut at END."
    )


class EmbeddingsByType(_Response):
    float_: list[list[float]] = Field(alias="float", serialization_alias="float")


class CohereEmbedResponse(_Response):
    """``response_type`` ``embeddings_floats`` (v1 without ``embedding_types``) or ``embeddings_by_type``."""

    response_type: Literal["embeddings_floats", "embeddings_by_type"]
    id: str
    embeddings: list[list[float]] | EmbeddingsByType
    texts: list[str]
    meta: Meta


# --------------------------------------------------------------------------------------------------- misc
class ModelCard(_Response):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "e2rank"
    dimension: int | None = None


class ModelList(_Response):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(_Response):
    status: Literal["ok", "loading", "error"]
    model: str | None = None
    detail: str | None = None


class ErrorDetail(_Response):
    message: str
    type: str
    code: int


class ErrorResponse(_Response):
    """Every error: Cohere clients read ``message``, OpenAI clients ``error.message``."""

    message: str
    error: ErrorDetail
