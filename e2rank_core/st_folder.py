"""Sentence-transformers encoder folders loaded with ``transformers`` alone: no ``import sentence_transformers``.

Why: ``import sentence_transformers`` alone costs 7-15 s on a small CPU (its package ``__init__`` imports
scikit-learn, pandas, datasets, its trainer, ...), two to three times ``import torch, transformers``, and it was most
of the cold start of ``e2rank rerank`` (issue #20). The folders e2rank serves are nearly always the plain
``Transformer -> Pooling -> [Normalize]`` pipeline, a few lines on top of ``transformers.AutoModel``.

For that pipeline only, this module does what sentence-transformers 6 does (``base/modules/transformer.py``,
``sentence_transformer/modules/pooling.py``, ``base/modules/normalize.py``, ``base/model.py``): the same
``from_pretrained`` calls with the same keyword arguments, the same ``max_seq_length`` and ``do_lower_case`` rules,
the same pooling arithmetic and the same prompts. Anything else (another module, pooling other than mean / cls /
lasttoken, ``include_prompt: false``, a PEFT adapter, an encoder-decoder backbone, a processor that is not a plain
tokenizer, ``truncate_dim``, ``device_map``, flash attention, ...) makes :func:`load_st_folder` return ``None``, and
the caller loads ``SentenceTransformer`` as before. ``E2RANK_LIGHT_LOADER=0`` turns this path off.

When the forward pass is an exported graph that is already cached (``backend="onnx"`` and the others,
:mod:`e2rank_core.runtimes`), not even ``AutoModel`` is needed: :func:`load_st_folder_tokenizer` reads the same plan
and loads only the config and the tokenizer (:class:`TokenizerOnlyEncoder`), which keeps ``transformers``' modeling
code (``torch._dynamo``, ``torch.distributed.tensor``, scipy: seconds of imports) out of the process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

#: Set to 0 / false / no / off to always load through sentence-transformers.
LIGHT_LOADER_ENV = "E2RANK_LIGHT_LOADER"

# modules.json class names, old and new spellings, that sentence-transformers 6 resolves to these three classes
_TRANSFORMER_TYPES = frozenset(
    {
        "sentence_transformers.models.Transformer",
        "sentence_transformers.base.modules.Transformer",
        "sentence_transformers.base.modules.transformer.Transformer",
    }
)
_POOLING_TYPES = frozenset(
    {
        "sentence_transformers.models.Pooling",
        "sentence_transformers.sentence_transformer.modules.Pooling",
        "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    }
)
_NORMALIZE_TYPES = frozenset(
    {
        "sentence_transformers.models.Normalize",
        "sentence_transformers.base.modules.Normalize",
        "sentence_transformers.base.modules.normalize.Normalize",
    }
)
# sentence-transformers' Transformer tries these names for its config, in this order
_TRANSFORMER_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
# sentence_bert_config.json keys reproduced here; any other key means a setting this module does not handle
_TRANSFORMER_KEYS = frozenset(
    {
        "transformer_task",
        "modality_config",
        "module_output_name",
        "processing_kwargs",
        "unpad_inputs",
        "query_length",
        "document_length",
        "query_expansion",
        "max_seq_length",
        "do_lower_case",
        "model_kwargs",
        "processor_kwargs",
        "config_kwargs",
        "model_args",
        "tokenizer_args",
        "config_args",
    }
)
_RENAMED_KWARGS = {"model_args": "model_kwargs", "tokenizer_args": "processor_kwargs", "config_args": "config_kwargs"}
_TEXT_FORWARD = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
# Legacy pooling flags in the order sentence-transformers converts them to ``pooling_mode``
_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_POOLING_MODES = frozenset({"mean", "cls", "lasttoken"})
# Config types that sentence-transformers loads as an encoder-only class rather than through AutoModel
_ENCODER_DECODER_TYPES = frozenset(
    {
        "t5",
        "mt5",
        "umt5",
        "udop",
        "longt5",
        "prophetnet",
        "switch_transformers",
        "blenderbot",
        "blenderbot-small",
        "m2m_100",
        "pegasus",
        "pegasus_x",
        "moonshine",
        "whisper",
        "marian",
        "t5gemma",
        "t5gemma2",
        "t5gemma2_text",
        "timm_wrapper",
    }
)
# model_kwargs that sentence-transformers consumes itself instead of passing them to from_pretrained
_UNSUPPORTED_MODEL_KWARGS = frozenset({"device_map", "code_revision", "gguf_file"})
# other attention implementations switch sentence-transformers to unpadded (flattened) batches
_ATTENTION = frozenset({"eager", "sdpa"})


def light_loader_enabled() -> bool:
    """False when ``$E2RANK_LIGHT_LOADER`` is 0 / false / no / off."""
    return os.environ.get(LIGHT_LOADER_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


@dataclass(frozen=True)
class FolderPlan:
    """What a qualifying folder asks for, read from its JSON files (no torch, no transformers)."""

    transformer_subfolder: str
    pooling_mode: str
    dimension: int
    normalize: bool
    max_seq_length: int | None = None
    do_lower_case: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    config_kwargs: dict[str, Any] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _relative(root: Path, sub: object) -> Path | None:
    """``root / sub`` for a relative path inside ``root`` (sentence-transformers rejects anything else too)."""
    if not isinstance(sub, str) or os.path.isabs(sub) or ".." in Path(sub).parts:
        return None
    return root / sub


def _transformer_config(folder: Path) -> dict[str, Any] | None:
    config: Any = {}
    for name in _TRANSFORMER_CONFIG_FILES:
        if (folder / name).is_file():
            config = _json(folder / name)
            if config is None or not isinstance(config, dict):
                return None
            if config:  # sentence-transformers moves on past an empty file
                break
    if not set(config) <= _TRANSFORMER_KEYS:
        return None
    for old, new in _RENAMED_KWARGS.items():
        if old in config:
            config[new] = config.pop(old)
    for key in ("model_kwargs", "processor_kwargs", "config_kwargs"):
        kwargs = config.get(key) or {}
        if not isinstance(kwargs, dict):
            return None
        config[key] = {k: v for k, v in kwargs.items() if k != "trust_remote_code"}  # as sentence-transformers
    if config.get("transformer_task", "feature-extraction") != "feature-extraction":
        return None
    if "modality_config" in config and (
        config["modality_config"] != _TEXT_FORWARD or config.get("module_output_name") != "token_embeddings"
    ):
        return None
    if config.get("processing_kwargs") or config.get("unpad_inputs"):
        return None
    if any(config.get(key) is not None for key in ("query_length", "document_length", "query_expansion")):
        return None
    max_seq_length = config.get("max_seq_length")
    if max_seq_length is not None and (type(max_seq_length) is not int or max_seq_length < 1):
        return None
    if not isinstance(config.get("do_lower_case", False), bool):
        return None
    return config


def _pooling_config(folder: Path) -> tuple[str, int] | None:
    config = _json(folder / "config.json")
    if not isinstance(config, dict):
        return None
    if "word_embedding_dimension" in config:
        if "embedding_dimension" in config:
            return None
        config["embedding_dimension"] = config.pop("word_embedding_dimension")
    legacy = [key for key in _LEGACY_POOLING if key in config]
    if legacy and "pooling_mode" not in config:
        active = [mode for key, mode in _LEGACY_POOLING.items() if config.get(key, False)]
        config["pooling_mode"] = active if active else "mean"
    for key in legacy:
        del config[key]
    if not set(config) <= {"embedding_dimension", "pooling_mode", "include_prompt"}:
        return None
    mode = config.get("pooling_mode", "mean")
    if isinstance(mode, list | tuple) and len(mode) == 1:
        mode = mode[0]
    dimension = config.get("embedding_dimension")
    if not isinstance(mode, str) or mode not in _POOLING_MODES or config.get("include_prompt", True) is not True:
        return None
    if type(dimension) is not int or dimension < 1:
        return None
    return mode, dimension


def read_st_folder(path: str | os.PathLike[str]) -> FolderPlan | None:
    """The plan for a local ``Transformer -> Pooling -> [Normalize]`` folder, or ``None`` if it is anything else."""
    root = Path(path)
    if not root.is_dir() or str(path) in {"hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl"}:
        return None
    modules = _json(root / "modules.json")
    if not isinstance(modules, list) or len(modules) not in (2, 3) or not all(isinstance(m, dict) for m in modules):
        return None
    kinds = (_TRANSFORMER_TYPES, _POOLING_TYPES, _NORMALIZE_TYPES)
    folders = []
    for module, kinds_here in zip(modules, kinds, strict=False):
        folder = _relative(root, module.get("path"))
        if module.get("type") not in kinds_here or module.get("kwargs") or folder is None:
            return None
        folders.append(folder)
    transformer_folder = folders[0]
    if (transformer_folder / "adapter_config.json").is_file():  # PEFT: sentence-transformers loads the base model
        return None
    transformer = _transformer_config(transformer_folder)
    pooling = _pooling_config(folders[1])
    if transformer is None or pooling is None:
        return None
    if len(folders) == 3:
        normalize = _json(folders[2] / "config.json") if (folders[2] / "config.json").is_file() else {}
        if not isinstance(normalize, dict):
            return None
        for key in ("module_input_name", "module_output_name"):
            if normalize.get(key, "sentence_embedding") != "sentence_embedding":
                return None
    model_config: Any = {}
    if (root / "config_sentence_transformers.json").is_file():
        model_config = _json(root / "config_sentence_transformers.json")
    if not isinstance(model_config, dict):
        return None
    if model_config.get("model_type", "SentenceTransformer") != "SentenceTransformer":
        return None
    if model_config.get("requirements") or model_config.get("truncate_dim") is not None:
        return None
    # SentenceTransformer's prompts: "query" and "document" first, saved ones fill in, None becomes ""
    prompts: dict[str, str | None] = {"query": None, "document": None}
    saved = model_config.get("prompts") or {}
    if not isinstance(saved, dict) or not all(isinstance(v, str) for v in saved.values()):
        return None
    for name, text in saved.items():
        if prompts.get(name) is None:
            prompts[name] = text
    default_prompt_name = model_config.get("default_prompt_name")
    if default_prompt_name is not None and default_prompt_name not in prompts:
        return None  # sentence-transformers raises; let it say why
    return FolderPlan(
        transformer_subfolder=str(modules[0]["path"]),
        pooling_mode=pooling[0],
        dimension=pooling[1],
        normalize=len(folders) == 3,
        max_seq_length=transformer.get("max_seq_length"),
        do_lower_case=bool(transformer.get("do_lower_case", False)),
        model_kwargs=transformer["model_kwargs"],
        processor_kwargs=transformer["processor_kwargs"],
        config_kwargs=transformer["config_kwargs"],
        prompts={name: text or "" for name, text in prompts.items()},
        default_prompt_name=default_prompt_name,
    )


def pool(mode: str, token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' padded pooling for one mode, the same operations in the same order (same bits)."""
    if mode == "mean":
        # half-precision sums accumulate in float32, and the mean is cast back
        half = token_embeddings.dtype in (torch.float16, torch.bfloat16)
        accumulate = torch.float32 if half else token_embeddings.dtype
        weights = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
        total = (token_embeddings * weights).sum(dim=1, dtype=accumulate)
        count = torch.clamp(weights.sum(dim=1, dtype=accumulate), min=1e-9)
        return (total / count).to(token_embeddings.dtype)
    hidden = token_embeddings.shape[-1]
    if mode == "cls":  # the first attended position (left padding skips the pads)
        first = attention_mask.to(torch.int).argmax(dim=1)
        return torch.gather(token_embeddings, 1, first.view(-1, 1, 1).expand(-1, 1, hidden)).squeeze(1)
    if mode == "lasttoken":  # the last attended position, whichever side the padding is on
        length = token_embeddings.shape[1]
        mask = attention_mask.to(torch.int32) if torch.jit.is_tracing() else attention_mask
        values, from_end = mask.flip(1).max(1)
        from_end = torch.where(values == 0, length - 1, from_end)
        index = (length - from_end - 1).view(-1, 1, 1).expand(-1, 1, hidden)
        masked = token_embeddings * mask.unsqueeze(-1).expand_as(token_embeddings).to(token_embeddings.dtype)
        return torch.gather(masked, 1, index).squeeze(dim=1)
    raise ValueError(f"unsupported pooling mode {mode!r}")


class StFolderEncoder(torch.nn.Module):
    """``AutoModel`` + pooling (+ L2 normalisation): the forward pass of the folder's SentenceTransformer.

    Offers what :class:`~e2rank_core.backend.EmbeddingBackend` reads from a ``SentenceTransformer``: ``tokenizer``,
    ``forward(features)["sentence_embedding"]``, ``device``, ``dtype``, ``prompts``, ``default_prompt_name``,
    ``max_seq_length`` and ``get_embedding_dimension()``.
    """

    def __init__(self, auto_model: torch.nn.Module, tokenizer: Any, plan: FolderPlan) -> None:
        super().__init__()
        self.auto_model = auto_model
        self.tokenizer = tokenizer
        self.plan = plan
        self.prompts: dict[str, str] = dict(plan.prompts)
        self.default_prompt_name = plan.default_prompt_name

    @property
    def max_seq_length(self) -> int:
        return int(self.tokenizer.model_max_length)

    @property
    def device(self) -> torch.device:
        return self.auto_model.device  # type: ignore[return-value]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def get_embedding_dimension(self) -> int:
        return self.plan.dimension

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        output = self.auto_model(**features, return_dict=True)
        token_embeddings = output["last_hidden_state"]
        mask = features.get("attention_mask")
        if mask is None or mask.size(-1) != token_embeddings.size(1):
            mask = torch.ones(token_embeddings.shape[:-1], device=token_embeddings.device, dtype=torch.int64)
        embedding = pool(self.plan.pooling_mode, token_embeddings, mask)
        if self.plan.normalize:
            embedding = F.normalize(embedding, p=2, dim=-1)
        return {**features, "token_embeddings": token_embeddings, "sentence_embedding": embedding}


def _lowercase_first(tokenizer: Any) -> bool:
    """``do_lower_case: true``: prepend a Lowercase normaliser unless there is one (False: cannot do it here)."""
    from tokenizers.normalizers import Lowercase, Sequence

    if not getattr(tokenizer, "is_fast", False):
        return False
    normalizer = tokenizer.backend_tokenizer.normalizer
    present = isinstance(normalizer, Lowercase) or (
        isinstance(normalizer, Sequence) and any(isinstance(n, Lowercase) for n in normalizer)
    )
    if not present:
        chain = [Lowercase()]
        if isinstance(normalizer, Sequence):
            chain += list(normalizer)
        elif normalizer is not None:
            chain.append(normalizer)
        tokenizer.backend_tokenizer.normalizer = Sequence(chain)
    return True


def _loading_kwargs(
    plan: FolderPlan,
    model_kwargs: dict[str, Any] | None,
    processor_kwargs: dict[str, Any] | None,
    config_kwargs: dict[str, Any] | None,
    trust_remote_code: bool,
    token: str | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    """The keyword arguments sentence-transformers' Transformer module hands to transformers (model, processor,
    config): the folder's own, then the hub ones, then the caller's. ``None`` for ones this module does not reproduce.
    """
    hub = {
        "subfolder": plan.transformer_subfolder,
        "token": token,
        "cache_dir": os.environ.get("SENTENCE_TRANSFORMERS_HOME"),
        "revision": None,
        "local_files_only": False,
        "trust_remote_code": trust_remote_code,
    }
    model_kw = {**plan.model_kwargs, **hub, **(model_kwargs or {})}
    processor_kw = {**plan.processor_kwargs, **hub, **(processor_kwargs or {})}
    config_kw = {**plan.config_kwargs, **hub, **(config_kwargs or {})}
    if _UNSUPPORTED_MODEL_KWARGS & model_kw.keys() or model_kw.get("attn_implementation", "sdpa") not in _ATTENTION:
        return None
    if "gguf_file" in processor_kw or "gguf_file" in config_kw:
        return None
    if plan.max_seq_length is not None and "model_max_length" not in processor_kw:
        processor_kw["model_max_length"] = plan.max_seq_length
    return model_kw, processor_kw, config_kw


def _encoder_config(path: str, plan: FolderPlan, config_kw: dict[str, Any]) -> Any:
    """The backbone's ``PretrainedConfig`` when it is a plain encoder that ``AutoModel`` loads, else ``None``."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, **config_kw)
    if (
        config.model_type in _ENCODER_DECODER_TYPES
        or getattr(config, "is_encoder_decoder", False)
        or getattr(config, "sub_configs", None)
        or getattr(config, "hidden_size", None) != plan.dimension
    ):
        return None
    return config


def _cap_model_max_length(tokenizer: Any, config: Any, processor_kw: dict[str, Any]) -> None:
    """The tokenizer's limit, capped at the position table unless model_max_length was given (max_seq_length counts)."""
    limit = getattr(config, "max_position_embeddings", None)
    if "model_max_length" not in processor_kw and limit is not None and limit != -1:
        tokenizer.model_max_length = min(tokenizer.model_max_length, limit)


def _prepare(
    path: str,
    model_kwargs: dict[str, Any] | None,
    processor_kwargs: dict[str, Any] | None,
    config_kwargs: dict[str, Any] | None,
    trust_remote_code: bool,
    token: str | None,
) -> tuple[FolderPlan, tuple[dict[str, Any], dict[str, Any], dict[str, Any]], Any] | None:
    """The folder's plan, the (model, processor, config) keyword arguments and the encoder config; ``None`` where
    the folder or the arguments ask for anything this module does not reproduce."""
    plan = read_st_folder(path)
    if plan is None:
        return None
    kwargs = _loading_kwargs(plan, model_kwargs, processor_kwargs, config_kwargs, trust_remote_code, token)
    if kwargs is None:
        return None
    config = _encoder_config(path, plan, kwargs[2])
    return None if config is None else (plan, kwargs, config)


def load_st_folder(
    path: str,
    *,
    device: str,
    model_kwargs: dict[str, Any] | None = None,
    processor_kwargs: dict[str, Any] | None = None,
    config_kwargs: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    token: str | None = None,
) -> StFolderEncoder | None:
    """The folder's encoder as ``SentenceTransformer(path, device=..., model_kwargs=..., ...)`` would load it.

    ``None`` when the folder or the keyword arguments ask for anything this module does not reproduce.
    """
    prepared = _prepare(path, model_kwargs, processor_kwargs, config_kwargs, trust_remote_code, token)
    if prepared is None:
        return None
    plan, (model_kw, processor_kw, config_kw), config = prepared

    from transformers import AutoModel, AutoProcessor, PreTrainedTokenizerBase

    processor = AutoProcessor.from_pretrained(path, **processor_kw)
    if not isinstance(processor, PreTrainedTokenizerBase):
        return None  # a multimodal processor: sentence-transformers' own business
    if plan.do_lower_case and not _lowercase_first(processor):
        return None
    if hasattr(config, "use_cache"):  # sentence-transformers turns the KV cache off unless config_kwargs set it
        config.use_cache = config_kw.get("use_cache", False)
    auto_model = AutoModel.from_pretrained(path, config=config, **model_kw)
    _cap_model_max_length(processor, auto_model.config, processor_kw)
    return StFolderEncoder(auto_model, processor, plan).to(device).eval()


def _processor_is_tokenizer(path: str, plan: FolderPlan, config: Any) -> bool:
    """Whether ``AutoProcessor.from_pretrained`` on this local folder ends in its ``AutoTokenizer`` fallback.

    transformers 5's AutoProcessor first looks for a processor class (processor / preprocessor / video processor
    configs, ``processor_class`` or an ``auto_map["AutoProcessor"]`` in the tokenizer config or the model config, the
    model type's registered processor) and only then tries ``AutoTokenizer``. The same checks, read from the files
    without importing ``transformers.processing_utils`` (which imports the modeling code, issue #20).
    """
    from transformers.models.auto.auto_mappings import PROCESSOR_MAPPING_NAMES
    from transformers.utils import FEATURE_EXTRACTOR_NAME, PROCESSOR_NAME, VIDEO_PROCESSOR_NAME

    folder = _relative(Path(path), plan.transformer_subfolder)
    processor_files = (PROCESSOR_NAME, FEATURE_EXTRACTOR_NAME, VIDEO_PROCESSOR_NAME)
    if folder is None or any((folder / name).exists() for name in processor_files):
        return False
    tokenizer_config = _json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").exists() else {}
    if not isinstance(tokenizer_config, dict):
        return False
    for processor_class, auto_map in (
        (tokenizer_config.get("processor_class"), tokenizer_config.get("auto_map")),
        (getattr(config, "processor_class", None), getattr(config, "auto_map", None)),
    ):
        if processor_class is not None or "AutoProcessor" in (auto_map or {}):
            return False
    return config.model_type not in PROCESSOR_MAPPING_NAMES


class TokenizerOnlyEncoder:
    """The folder's tokenizer and sentence-transformers settings, with no weights: for exported forward passes.

    When ``backend`` is ``onnx`` / ``openvino`` (or their int8 variants) and the export is already cached
    (:func:`e2rank_core.runtimes.cached_export_file`), the forward pass is the exported graph, so the PyTorch model
    is not loaded at all (issue #20). This object answers what :class:`~e2rank_core.backend.EmbeddingBackend` reads
    from its encoder: ``tokenizer``, ``device`` (the CPU), ``dtype``, ``prompts``, ``default_prompt_name``,
    ``max_seq_length`` and ``get_embedding_dimension()``; it has no forward pass.
    """

    #: The exported graphs take and return float32 (the int8 variants quantise weights inside the graph only).
    dtype: torch.dtype = torch.float32

    def __init__(self, tokenizer: Any, plan: FolderPlan) -> None:
        self.tokenizer = tokenizer
        self.plan = plan
        self.prompts: dict[str, str] = dict(plan.prompts)
        self.default_prompt_name = plan.default_prompt_name
        self.device = torch.device("cpu")

    @property
    def max_seq_length(self) -> int:
        return int(self.tokenizer.model_max_length)

    def get_embedding_dimension(self) -> int:
        return self.plan.dimension


def load_st_folder_tokenizer(
    path: str,
    *,
    model_kwargs: dict[str, Any] | None = None,
    processor_kwargs: dict[str, Any] | None = None,
    config_kwargs: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    token: str | None = None,
) -> TokenizerOnlyEncoder | None:
    """What :func:`load_st_folder` gives, without the model: its tokenizer (same class, same settings) and plan.

    Loads the tokenizer with ``AutoTokenizer`` (``AutoProcessor`` imports the modeling code), only where
    ``AutoProcessor`` would have fallen back to that same call; ``None`` wherever :func:`load_st_folder` would return
    ``None`` before loading weights, and for folders with a processor of their own.
    """
    prepared = _prepare(path, model_kwargs, processor_kwargs, config_kwargs, trust_remote_code, token)
    if prepared is None or not _processor_is_tokenizer(path, prepared[0], prepared[2]):
        return None
    plan, (_, processor_kw, _), config = prepared

    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **processor_kw)
    except Exception:  # AutoProcessor would go on to other classes here: leave the folder to load_st_folder
        return None
    if plan.do_lower_case and not _lowercase_first(tokenizer):
        return None
    _cap_model_max_length(tokenizer, config, processor_kw)
    return TokenizerOnlyEncoder(tokenizer, plan)


__all__ = [
    "LIGHT_LOADER_ENV",
    "FolderPlan",
    "StFolderEncoder",
    "TokenizerOnlyEncoder",
    "light_loader_enabled",
    "load_st_folder",
    "load_st_folder_tokenizer",
]
