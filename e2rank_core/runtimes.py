"""Forward passes other than PyTorch's, for encoder models on CPUs: ONNX Runtime and OpenVINO, optionally int8.

Only the forward pass changes: tokenisation, prompts, truncation and padding stay the core's
(:mod:`e2rank_core.backend`), and the exported graph is the sentence-transformers model itself (transformer, pooling,
normalisation), so its output is what ``SentenceTransformer.forward`` gives.

Why not sentence-transformers' own ``backend="onnx"``: it loads through ``optimum-onnx`` and ``optimum-intel``, whose
releases cap ``transformers`` (``<4.58`` and ``<5.6``) below what sentence-transformers 6 needs, so they cannot be
installed beside it. The graph is exported by PyTorch's own exporter (``torch.onnx.export``), converted by OpenVINO's
own converter (``openvino.convert_model``) and quantised by the runtimes' own tools
(``onnxruntime.quantization.quantize_dynamic``; NNCF's int8 weight compression): nothing here writes a graph by hand.

Backends (one string, so that every settings key, CLI flag and adapter field carries it):

* ``torch``: the model as loaded (default; any family, any device);
* ``onnx`` / ``onnx-int8``: ONNX Runtime on the CPU, float32 graph / dynamic int8 quantisation (``e2rank[onnx]``);
* ``openvino`` / ``openvino-int8``: OpenVINO on the CPU, float32 IR / int8 weights (``e2rank[openvino]``).

Exports are cached under :func:`export_cache_root` (``$E2RANK_CACHE/exports``, default ``~/.cache/e2rank/exports``)
in a folder named by a hash of the model's files and the backend, written atomically: the export happens once per
model and backend, later loads only open the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("e2rank")

#: Every accepted ``backend`` value.
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")

#: Bumped when the export recipe changes, so that old cached exports are not reused.
EXPORT_VERSION = 1

#: Runtimes that can compute in bfloat16 (``dtype="bfloat16"``); the others compute in float32 only.
BFLOAT16_RUNTIMES = frozenset({"openvino"})

_PACKAGES = {
    "onnx": "onnxruntime and onnx (pip install 'e2rank[onnx]')",
    "openvino": "openvino, onnx and nncf (pip install 'e2rank[openvino]')",
}
_MODEL_FILES = {"onnx": "model.onnx", "openvino": "model.xml"}
_MARKER = "e2rank-export.json"


def check_backend(value: object) -> str:
    """``None`` (torch) or one of :data:`BACKENDS`, case and surrounding spaces ignored."""
    if value is None:
        return "torch"
    if not isinstance(value, str):
        raise TypeError(f"backend must be one of {BACKENDS} or None, got {type(value).__name__} {value!r}")
    cleaned = value.strip().lower().replace("_", "-")
    if cleaned not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {value!r}")
    return cleaned


def split_backend(backend: str) -> tuple[str, bool]:
    """``"onnx-int8"`` -> ``("onnx", True)``."""
    runtime, _, quant = check_backend(backend).partition("-")
    return runtime, quant == "int8"


def export_cache_root() -> Path:
    """``$E2RANK_CACHE/exports``, else ``$XDG_CACHE_HOME/e2rank/exports`` (``~/.cache/e2rank/exports``)."""
    base = os.environ.get("E2RANK_CACHE")
    if base:
        return Path(base).expanduser() / "exports"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "e2rank" / "exports"


def export_key(model_path: str, backend: str) -> str:
    """A hash of the model's files (name, size, modification time), the backend and the export recipe."""
    root = Path(model_path)
    files = []
    for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
        if path.is_file() and path.suffix in {".safetensors", ".bin", ".json", ".txt", ".gguf"}:
            stat = path.stat()
            files.append([str(path.relative_to(root)) if root.is_dir() else path.name, stat.st_size, stat.st_mtime_ns])
    payload = json.dumps([str(root.resolve()), files, check_backend(backend), EXPORT_VERSION], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def require_runtime(backend: str) -> None:
    """A clear ``ImportError`` naming what to install when a backend's runtime is missing."""
    runtime, int8 = split_backend(backend)
    modules = ("onnxruntime", "onnx") if runtime == "onnx" else ("openvino", "onnx", *(("nncf",) if int8 else ()))
    for name in modules:
        try:
            __import__(name)
        except ImportError as exc:
            raise ImportError(f"backend {backend!r} needs {_PACKAGES[runtime]}: {exc}") from None


def _pipeline(st_model: Any, input_names: tuple[str, ...]) -> Any:
    """The sentence-transformers model as a plain ``forward(input_ids, attention_mask[, token_type_ids])``."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st_model = st_model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.st_model(dict(zip(input_names, tensors, strict=True)))["sentence_embedding"]

    return Pipeline().eval()


def _export_onnx(st_model: Any, input_names: tuple[str, ...], target: Path) -> None:
    """Trace the whole sentence-transformers pipeline with eager attention, then let ONNX Runtime fuse BERT graphs."""
    import torch

    example = torch.randint(1000, 2000, (2, 16), dtype=torch.long)
    ones, zeros = torch.ones_like(example), torch.zeros_like(example)
    fill = {"input_ids": example, "attention_mask": ones, "token_type_ids": zeros}
    tensors = tuple(fill[name] for name in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    transformer = getattr(st_model[0], "auto_model", None)
    attention = getattr(getattr(transformer, "config", None), "_attn_implementation", None)
    plain = target.with_name("plain-" + target.name)
    try:
        if attention not in (None, "eager"):
            # the eager attention graph is the one ONNX Runtime's fusions recognise (SDPA's is not fused)
            transformer.set_attn_implementation("eager")
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every input here
            torch.onnx.export(
                _pipeline(st_model, input_names),
                tensors,
                str(plain),
                input_names=list(input_names),
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,  # the TorchScript exporter: no onnxscript dependency, dynamic axes as declared
            )
    finally:
        if attention not in (None, "eager"):
            transformer.set_attn_implementation(attention)
    config = getattr(transformer, "config", None)
    if getattr(config, "model_type", "") == "bert":
        from onnxruntime.transformers.optimizer import optimize_model

        # ONNX Runtime's own BERT fusions (attention, layer norms, GELU); the graph's numbers stay float32
        optimize_model(
            str(plain), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
        ).save_model_to_file(str(target))
        plain.unlink()
    else:
        plain.replace(target)


def export_model(st_model: Any, backend: str, folder: Path, input_names: tuple[str, ...], source: Path | None) -> None:
    """Write ``backend``'s model file into the empty ``folder``; ``source`` is the float32 ONNX export (cached).

    ``st_model`` (the SentenceTransformer) is traced when there is no ``source``; otherwise it is not used (None).
    """
    runtime, int8 = split_backend(backend)
    if source is None:
        _export_onnx(st_model, input_names, folder / "model.onnx")
    elif runtime == "onnx":
        from onnx import TensorProto
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(source),
            str(folder / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": TensorProto.FLOAT},  # the fused ops' outputs are float32
        )
    else:
        import openvino as ov

        ov_model = ov.convert_model(str(source))
        if int8:
            import nncf

            ov_model = nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(ov_model, str(folder / "model.xml"), compress_to_fp16=False)


def cached_export_file(backend: str, model_path: str) -> Path | None:
    """The cached exported model file for this model and backend, or ``None`` when it has not been exported yet.

    The one cache-hit rule (:func:`cached_export` reuses it): the folder named by :func:`export_key` holds a finished
    export (its marker, written last, and the model file). The backend loads no PyTorch model when this is a file.
    """
    runtime, _ = split_backend(backend)
    if runtime not in _MODEL_FILES:
        return None
    folder = export_cache_root() / export_key(model_path, backend)
    model_file = folder / _MODEL_FILES[runtime]
    return model_file if (folder / _MARKER).is_file() and model_file.is_file() else None


def export_needs_torch_model(backend: str, model_path: str) -> bool:
    """Whether loading ``backend`` for this model needs the PyTorch model: only to trace the float32 ONNX export.

    Every other export (int8, OpenVINO) is made from the cached float32 ONNX file (see :func:`cached_export`), so once
    that file exists no backend needs the PyTorch model again.
    """
    runtime, _ = split_backend(backend)
    if runtime not in _MODEL_FILES:
        return True
    return cached_export_file(backend, model_path) is None and cached_export_file("onnx", model_path) is None


def cached_export(get_st_model: Callable[[], Any], backend: str, model_path: str, input_names: tuple[str, ...]) -> Path:
    """The exported model file for this model and backend: from the cache, or exported once and cached.

    ``get_st_model`` gives the SentenceTransformer to export; it is called only when the export is not cached (after a
    light load it imports and loads sentence-transformers, seconds that a cached export saves).
    """
    cached = cached_export_file(backend, model_path)
    if cached is not None:
        return cached
    runtime, _ = split_backend(backend)
    folder = export_cache_root() / export_key(model_path, backend)
    model_file = folder / _MODEL_FILES[runtime]
    # every other backend starts from the float32 ONNX export, itself cached: the model is traced once
    source = None if backend == "onnx" else cached_export(get_st_model, "onnx", model_path, input_names)
    folder.parent.mkdir(parents=True, exist_ok=True)
    logger.warning("e2rank: exporting %s for backend %r into %s (once, then reused)", model_path, backend, folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        export_model(get_st_model() if source is None else None, backend, staging, input_names, source)
        meta = {"model": model_path, "backend": backend, "inputs": list(input_names), "version": EXPORT_VERSION}
        (staging / _MARKER).write_text(json.dumps(meta, indent=1))
        try:
            os.replace(staging, folder)
        except OSError:  # another process finished the same export first, or a stale folder sits there
            if not (folder / _MARKER).is_file():
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model_file


def load_runtime(
    get_st_model: Callable[[], Any],
    backend: str,
    model_path: str,
    input_names: tuple[str, ...],
    *,
    compute_dtype: Any = None,
) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """A callable from padded int64 arrays (the core's batches) to sentence embeddings, on the CPU.

    ``get_st_model`` gives the SentenceTransformer, called only if the export has to be made (see ``cached_export``).
    ``compute_dtype`` (a ``torch.dtype``; None = float32) is the arithmetic: float32 everywhere, or bfloat16 with
    OpenVINO, whose CPU plugin otherwise picks bfloat16 by itself on CPUs that have it (AVX-512 BF16, AMX) and would
    change the scores of a backend named float32.
    """
    runtime, _ = split_backend(backend)
    precision = "bf16" if str(compute_dtype) == "torch.bfloat16" else "f32"
    if precision != "f32" and runtime not in BFLOAT16_RUNTIMES:
        raise ValueError(f"backend {backend!r} computes in float32 only; got compute_dtype={compute_dtype}")
    require_runtime(backend)
    model_file = cached_export(get_st_model, backend, model_path, input_names)
    if runtime == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def run_onnx(features: Mapping[str, np.ndarray]) -> np.ndarray:
            return session.run(None, {n: features[n] for n in names})[0]

        return run_onnx
    import openvino as ov

    core = ov.Core()
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        logger.warning("e2rank: this CPU has no bfloat16 support; OpenVINO computes %s in float32", backend)
        precision = "f32"
    compiled = core.compile_model(str(model_file), "CPU", {"INFERENCE_PRECISION_HINT": precision})
    ov_names = [next(iter(port.get_names())) for port in compiled.inputs]

    def run_openvino(features: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(compiled({n: features[n] for n in ov_names})[0])

    return run_openvino


__all__ = [
    "BACKENDS",
    "BFLOAT16_RUNTIMES",
    "cached_export_file",
    "check_backend",
    "export_cache_root",
    "export_key",
    "export_needs_torch_model",
    "load_runtime",
    "split_backend",
]
