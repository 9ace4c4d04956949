"""What the LangChain compressor and embeddings share: model fields, aliases and checks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from e2rank_core import E2RankModel, default_model
from e2rank_core.settings import (
    ModelSettings,
    check_device,
    check_dtype,
    check_flag,
    check_model_name,
    reject_unknown_arguments,
    resolve_alias,
)


class E2RankModelFields(BaseModel):
    """Model selection fields of every LangChain e2rank class; the model itself is never held.

    :attr:`e2rank_model` looks the model up through ``e2rank_core.shared_model`` on each use, so every e2rank
    component (of any framework) naming the same model and settings uses one copy of the weights, and copies and
    pickles of these objects carry settings only. ``model_name`` is accepted for ``model``; unknown arguments are
    an error.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    model: str = Field(default_factory=default_model, description="E2Rank model id or local path")
    device: str | None = Field(default=None, description="cpu, cuda, mps; None picks the best available")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float32 on CPU")
    token: str | None = Field(default=None, description="Hugging Face token", exclude=True, repr=False)
    model_kwargs: dict[str, Any] | None = Field(default=None, description="passed to from_pretrained")
    trust_remote_code: bool = Field(default=False, description="allow custom model code from the checkpoint")
    batch_size: int = Field(default=32, ge=1, description="texts per forward pass")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, values: Any) -> Any:
        if isinstance(values, dict):
            values = dict(values)
            resolve_alias(values, "model", "model_name")
            if "top_k" in values and "top_n" in cls.model_fields:  # the spelling of the Haystack adapter
                resolve_alias(values, "top_n", "top_k")
            reject_unknown_arguments(cls.__name__, values, cls.model_fields)
        return values

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> str:
        return check_model_name(value) or default_model()

    @field_validator("trust_remote_code", "scale_score", mode="before", check_fields=False)
    @classmethod
    def _flag(cls, value: Any, info: Any) -> bool:
        return check_flag(str(info.field_name), value)

    @field_validator("plain_queries", mode="before", check_fields=False)
    @classmethod
    def _optional_flag(cls, value: Any) -> bool | None:
        return None if value is None else check_flag("plain_queries", value)

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> str | None:
        return check_device(value)

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: Any) -> str | None:
        return check_dtype(value)

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded :class:`~e2rank_core.E2RankModel` (loaded on first access, shared per settings)."""
        return ModelSettings(
            self.model, self.device, self.dtype, self.token, self.trust_remote_code, self.model_kwargs
        ).load()
