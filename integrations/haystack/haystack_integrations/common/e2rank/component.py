"""The base of the three E2Rank Haystack components: model settings, warm-up, exact (de)serialisation.

Each component's ``__init__`` checks its options (so a bad YAML fails at load, not at the first run) and stores them
under the names of its parameters; :meth:`E2RankComponent.to_dict` serialises exactly those parameters, read from the
``__init__`` signature, so a new option cannot be forgotten in one component.
"""

from __future__ import annotations

import copy
import inspect
import logging
from typing import Any, TypeVar

from haystack import Document, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace
from haystack.utils.hf import deserialize_hf_model_kwargs, serialize_hf_model_kwargs

from e2rank_core import E2RankModel, default_model
from e2rank_core.settings import (
    ModelSettings,
    check_backend,
    check_dtype,
    check_flag,
    check_kwargs,
    check_model_name,
)

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False)

ComponentT = TypeVar("ComponentT", bound="E2RankComponent")


class E2RankComponent:
    """Shared by ``E2RankRanker``, ``E2RankDocumentEmbedder`` and ``E2RankTextEmbedder``.

    The model is not held by the component: :attr:`e2rank_model` looks it up through
    ``e2rank_core.shared_model``, so components (of any framework) naming the same model and settings share one copy.
    """

    model: str
    device: ComponentDevice
    token: Secret | None
    dtype: str | None
    model_kwargs: dict[str, Any] | None
    trust_remote_code: bool
    backend: str

    def _init_model_settings(
        self,
        model: str | None,
        device: ComponentDevice | str | None,
        token: Secret | None,
        dtype: str | None,
        model_kwargs: dict[str, Any] | None,
        trust_remote_code: bool,
        backend: str | None = None,
    ) -> None:
        self.model = check_model_name(model) or default_model()
        self.backend = check_backend(backend)
        if device is None and self.backend != "torch":
            device = "cpu"  # the exported backends run on the CPU, whatever accelerator is present
        if isinstance(device, str):
            device = ComponentDevice.from_str(device)
        elif device is not None and not isinstance(device, ComponentDevice):
            raise TypeError(f"device must be a ComponentDevice, a device string or None, got {type(device).__name__}")
        self.device = ComponentDevice.resolve_device(device)
        if token is not None and not isinstance(token, Secret):
            raise TypeError("token must be a haystack Secret (e.g. Secret.from_env_var('HF_TOKEN')) or None")
        self.token = token
        self.dtype = check_dtype(dtype)
        self.model_kwargs = check_kwargs("model_kwargs", model_kwargs)
        self.trust_remote_code = check_flag("trust_remote_code", trust_remote_code)
        self._warm = False

    def model_settings(self) -> ModelSettings:
        return ModelSettings(
            self.model,
            device=self.device.to_torch_str(),
            dtype=self.dtype,
            token=self.token.resolve_value() if self.token is not None else None,
            trust_remote_code=self.trust_remote_code,
            model_kwargs=self.model_kwargs,
            backend=self.backend,
        )

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded model (loaded on first use, shared per settings in this process)."""
        return self.model_settings().load()

    def warm_up(self) -> None:
        """Load the model (once; later calls only look it up)."""
        if not self._warm:
            self.e2rank_model  # noqa: B018 - loading is the point
            self._warm = True

    def _get_telemetry_data(self) -> dict[str, Any]:
        return {"model": self.model}

    def to_dict(self) -> dict[str, Any]:
        """Every ``__init__`` parameter, YAML-safe (device and token as dicts, torch dtypes as strings)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        params = {name: getattr(self, name) for name in names}
        params["device"] = self.device.to_dict()
        params["token"] = self.token.to_dict() if self.token is not None else None
        if params.get("model_kwargs"):
            params["model_kwargs"] = copy.deepcopy(params["model_kwargs"])  # the component's own stays as it is
            serialize_hf_model_kwargs(params["model_kwargs"])
        return default_to_dict(self, **params)

    @classmethod
    def from_dict(cls: type[ComponentT], data: dict[str, Any]) -> ComponentT:
        """Inverse of :meth:`to_dict`; ``data`` is left unchanged. A YAML may give ``device: cpu`` as a string."""
        data = copy.deepcopy(data)
        # a YAML `init_parameters:` with nothing under it loads as None
        params = data["init_parameters"] = data.get("init_parameters") or {}
        device = params.get("device")
        if isinstance(device, dict):
            params["device"] = ComponentDevice.from_dict(device)
        deserialize_secrets_inplace(params, keys=["token"])
        if params.get("model_kwargs"):
            deserialize_hf_model_kwargs(params["model_kwargs"])
        return default_from_dict(cls, data)


def document_text(document: Document, meta_fields_to_embed: list[str], separator: str) -> str:
    """Meta values (in the given field order, when present and not None), then the content, joined by ``separator``.

    ``content=None`` counts as an empty text. The ranker and the document embedder both call this, so reused
    embeddings are exactly what the ranker would compute.
    """
    meta_values = [str(document.meta[key]) for key in meta_fields_to_embed if document.meta.get(key) is not None]
    return separator.join([*meta_values, document.content or ""])


def check_documents(documents: object, component: str) -> list[Document]:
    if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
        raise TypeError(f"{component} expects a list of haystack Document objects")
    return documents


def check_separator(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"embedding_separator must be a string, got {type(value).__name__} {value!r}")
    return value
