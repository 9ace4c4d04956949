"""What the E2Rank ranker and embedders share: model loading settings, document text, (de)serialisation."""

from __future__ import annotations

import copy
from typing import Any

from haystack import Document
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace
from haystack.utils.hf import deserialize_hf_model_kwargs, serialize_hf_model_kwargs

from e2rank_core import E2RankModel, shared_model

DEFAULT_TOKEN = Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False)


def load_model(
    model: str,
    device: ComponentDevice,
    token: Secret | None,
    dtype: str | None,
    trust_remote_code: bool,
    model_kwargs: dict[str, Any] | None,
) -> E2RankModel:
    """The process-wide E2RankModel for these settings (ranker and embedders share one copy)."""
    return shared_model(
        model,
        device=device.to_torch_str(),
        dtype=dtype,
        token=token.resolve_value() if token is not None else None,
        trust_remote_code=trust_remote_code,
        model_kwargs=model_kwargs,
    )


def document_text(document: Document, meta_fields_to_embed: list[str], separator: str) -> str:
    """Meta values (in the given field order, when present and not None), then the content, joined by ``separator``.

    ``content=None`` counts as an empty text. The ranker and the document embedder both call this, so reused
    embeddings are exactly what the ranker would compute.
    """
    meta_values = [str(document.meta[key]) for key in meta_fields_to_embed if document.meta.get(key) is not None]
    return separator.join([*meta_values, document.content or ""])


def check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def serialize_common(init_parameters: dict[str, Any]) -> dict[str, Any]:
    """Turn the device, token and model_kwargs init parameters into plain, YAML-safe values.

    Works on copies: the component's own ``model_kwargs`` (which may hold ``torch.dtype`` values, also nested)
    is left as it is.
    """
    params = dict(init_parameters)
    params["device"] = params["device"].to_dict() if params.get("device") is not None else None
    params["token"] = params["token"].to_dict() if params.get("token") is not None else None
    if params.get("model_kwargs"):
        params["model_kwargs"] = copy.deepcopy(params["model_kwargs"])
        serialize_hf_model_kwargs(params["model_kwargs"])
    return params


def deserialize_common(data: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`serialize_common`; returns a revived copy and leaves ``data`` unchanged.

    Besides the serialized ``{"type": "single", ...}`` form, a hand-written YAML may give the device as a plain
    string (``device: cpu``, ``device: cuda:0``).
    """
    data = copy.deepcopy(data)
    # a YAML `init_parameters:` with nothing under it loads as None
    params = data["init_parameters"] = data.get("init_parameters") or {}
    device = params.get("device")
    if isinstance(device, dict):
        params["device"] = ComponentDevice.from_dict(device)
    elif isinstance(device, str):
        params["device"] = ComponentDevice.from_str(device)
    deserialize_secrets_inplace(params, keys=["token"])
    if params.get("model_kwargs"):
        deserialize_hf_model_kwargs(params["model_kwargs"])
    return data
