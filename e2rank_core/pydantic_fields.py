"""Pydantic fields and checks shared by the LlamaIndex and LangChain adapters (both frameworks are pydantic v2).

:class:`E2RankModelFields` selects the model; :class:`E2RankRerankFields` adds the rerank options. The model itself is
never held: :attr:`E2RankModelFields.e2rank_model` looks it up through ``e2rank_core.shared_model`` on each use, so
every e2rank component (of any framework) naming the same model and settings uses one copy of the weights, and copies
and pickles of these objects carry settings only. Other frameworks' spellings are accepted (``model_name`` for
``model``, ``top_k`` for ``top_n``, ``use_document_embeddings`` for ``use_node_embeddings``); unknown arguments are a
``TypeError``. Only the adapters import this module.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .model import E2RankModel
from .resolve import default_model
from .rocchio import check_optional_query_weight
from .settings import (
    ModelSettings,
    check_backend,
    check_device,
    check_dtype,
    check_flag,
    check_model_name,
    check_threshold,
    check_top_k,
    reject_unknown_arguments,
    resolve_alias,
)
from .validation import check_optional_positive_int

#: Other spellings of an option, per target field (only applied where the class has the target field).
ALIASES: dict[str, tuple[str, ...]] = {
    "model": ("model_name",),
    "top_n": ("top_k",),
    "use_node_embeddings": ("use_document_embeddings",),
    "embed_batch_size": ("batch_size",),
}


class E2RankModelFields(BaseModel):
    """Model selection fields of every LlamaIndex and LangChain e2rank class."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float32 on CPU")
    token: str | None = Field(default=None, description="Hugging Face token", exclude=True, repr=False)
    model_kwargs: dict[str, Any] | None = Field(default=None, description="passed to from_pretrained")
    trust_remote_code: bool = Field(default=False, description="allow custom model code from the checkpoint")
    backend: str = Field(default="torch", description="torch, onnx, onnx-int8, openvino or openvino-int8")

    @model_validator(mode="before")
    @classmethod
    def _aliases_and_unknown(cls, values: Any) -> Any:
        if isinstance(values, dict):
            values = dict(values)
            for name, aliases in ALIASES.items():
                if name in cls.model_fields:
                    resolve_alias(values, name, *aliases)
            reject_unknown_arguments(cls.__name__, values, cls.model_fields)
        return values

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> str:
        return check_model_name(value) or default_model()

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> str | None:
        return check_device(value)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> str:
        return check_backend(value)

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: Any) -> str | None:
        return check_dtype(value)

    @field_validator(
        "trust_remote_code",
        "scale_score",
        "use_node_embeddings",
        "keep_retrieval_score",
        mode="before",
        check_fields=False,
    )
    @classmethod
    def _flag(cls, value: Any, info: Any) -> bool:
        return check_flag(str(info.field_name), value)

    @field_validator("plain_queries", mode="before", check_fields=False)
    @classmethod
    def _optional_flag(cls, value: Any) -> bool | None:
        return None if value is None else check_flag("plain_queries", value)

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded :class:`~e2rank_core.E2RankModel` (loaded on first access, shared per settings)."""
        return ModelSettings(
            self.model, self.device, self.dtype, self.token, self.trust_remote_code, self.model_kwargs, self.backend
        ).load()


class E2RankRerankFields(E2RankModelFields):
    """The rerank options every reranker adapter has, with the core's meaning (see ``E2RankModel.rerank``)."""

    num_input_docs: int | None = Field(
        default=None,
        description="candidates written into the listwise prompt; default: the model's (20 unless its "
        "e2rank_config.json stores another)",
    )
    query_weight: float | None = Field(
        default=None,
        description="score by cosine to normalize(p + query_weight * q), >= 0 (0: the paper's score); default: the "
        "model's (0 unless its e2rank_config.json stores another)",
    )
    score_threshold: float | None = Field(default=None, description="drop results whose (scaled) score is below")
    scale_score: bool = Field(default=False, description="report (cos + 1) / 2 in [0, 1] instead of the cosine")
    window_size: int | None = Field(default=None, description="sliding windows of this size instead of one prompt")
    stride: int = Field(default=10, description="sliding-window step")
    batch_size: int = Field(default=32, description="texts per forward pass")

    @field_validator("top_n", "window_size", "num_input_docs", mode="before", check_fields=False)
    @classmethod
    def _optional_positive(cls, value: Any, info: Any) -> int | None:
        return check_optional_positive_int(str(info.field_name), value)

    @field_validator("stride", "batch_size", mode="before")
    @classmethod
    def _positive(cls, value: Any, info: Any) -> int:
        return check_top_k(str(info.field_name), value)

    @field_validator("score_threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> float | None:
        return check_threshold("score_threshold", value)

    @field_validator("query_weight", mode="before")
    @classmethod
    def _query_weight(cls, value: Any) -> float | None:
        return check_optional_query_weight(value)

    def core_options(self) -> dict[str, Any]:
        """These options as keyword arguments of ``E2RankModel.rerank``."""
        return {
            "num_input_docs": self.num_input_docs,
            "score_threshold": self.score_threshold,
            "scale_score": self.scale_score,
            "window_size": self.window_size,
            "stride": self.stride,
            "batch_size": self.batch_size,
            "query_weight": self.query_weight,
            "deduplicate": True,
        }
