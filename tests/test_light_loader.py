"""The light loader (e2rank_core.st_folder): sentence-transformers encoder folders without importing the package.

Real models only: the bundled e2rank/minilm-l6-e2rank (new module names, mean pooling, prompts) and the packaged
sentence-transformers/all-MiniLM-L6-v2 (old module names and legacy pooling flags, max_seq_length 256). Every check
is against sentence-transformers itself loading the same folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MINILM_ID

from e2rank_core import E2RankModel
from e2rank_core.resolve import resolve_model
from e2rank_core.st_folder import LIGHT_LOADER_ENV, StFolderEncoder, load_st_folder, read_st_folder

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = "e2rank/minilm-l6-e2rank"
QUERY = "What is the capital of France?"
TEXTS = [
    "Paris is the capital and most populous city of France.",
    "lorem ipsum dolor sit amet " * 120,  # 600 words: far past both models' max_seq_length, under the word cut
    "Ünïcödé façade — 東京は日本の首都です 🚀 naïve café",
    "a special-looking string <|endoftext|> in the middle of a document",
    "x",
]


@pytest.fixture(scope="module", params=[BUNDLED, MINILM_ID])
def pair(request: pytest.FixtureRequest):
    """(light-loaded E2RankModel, SentenceTransformer on the same folder)."""
    from sentence_transformers import SentenceTransformer

    model = E2RankModel(request.param, device="cpu")
    assert model.backend.light_loaded
    return model, SentenceTransformer(resolve_model(request.param).path, device="cpu")


def test_light_embeddings_equal_sentence_transformers(pair) -> None:
    model, reference = pair
    backend = model.backend
    assert isinstance(backend.encoder, StFolderEncoder)
    expected = reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(model.embed_documents(TEXTS), expected, atol=1e-6, rtol=0)
    # the same settings, read without sentence-transformers
    assert backend.encoder.max_seq_length == reference.max_seq_length
    assert backend.max_document_tokens == reference.max_seq_length
    assert backend.prompts == reference.prompts
    assert backend.encoder.default_prompt_name == reference.default_prompt_name
    assert backend.dimension == reference.get_embedding_dimension()
    assert backend.dtype == reference.dtype == torch.float32
    assert backend.encoder.auto_model.config._attn_implementation == reference[0].auto_model.config._attn_implementation
    assert type(backend.tokenizer) is type(reference.tokenizer)
    assert backend.tokenizer(TEXTS)["input_ids"] == reference.tokenizer(TEXTS)["input_ids"]


@torch.inference_mode()
def test_light_forward_is_bit_identical(pair) -> None:
    """The same padded batch through both forward passes gives the same bits (same ops, same order)."""
    model, reference = pair
    backend = model.backend
    features = backend.pad_batch([e.input_ids for e in backend.encode_texts(TEXTS, kind="document")])
    ours = backend.encoder(dict(features))["sentence_embedding"]
    theirs = reference(dict(features))["sentence_embedding"]
    assert torch.equal(ours, theirs)


def test_rerank_same_with_and_without_light_loader(pair, monkeypatch: pytest.MonkeyPatch, capitals) -> None:
    model, _ = pair
    monkeypatch.setenv(LIGHT_LOADER_ENV, "0")
    plain = E2RankModel(model.model_name, device="cpu")
    assert not plain.backend.light_loaded
    ours, theirs = model.rerank(QUERY, capitals), plain.rerank(QUERY, capitals)
    assert [h.index for h in ours] == [h.index for h in theirs]
    np.testing.assert_allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-6, rtol=0)
    assert model.plain_queries == plain.plain_queries
    np.testing.assert_allclose(model.embed_queries([QUERY]), plain.embed_queries([QUERY]), atol=1e-6, rtol=0)


def test_st_model_after_light_load_is_the_real_one() -> None:
    from sentence_transformers import SentenceTransformer

    model = E2RankModel(BUNDLED, device="cpu", cache_size=0)
    before = model.embed_documents(TEXTS)
    backend = model.backend
    assert backend.light_loaded
    st_model = backend.st_model
    assert isinstance(st_model, SentenceTransformer) and not st_model.training
    assert backend.st_model is st_model and backend.encoder is st_model and not backend.light_loaded
    assert backend._light is None  # one copy of the weights: the light module is dropped
    np.testing.assert_allclose(model.embed_documents(TEXTS), before, atol=1e-6, rtol=0)
    assert backend.prompts == st_model.prompts and backend.dtype == st_model.dtype


def test_readme_command_never_imports_sentence_transformers() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop(LIGHT_LOADER_ENV, None)
    command = [sys.executable, "-X", "importtime", "-m", "e2rank_core.cli", "rerank", "--query", QUERY]
    result = subprocess.run(
        [*command, "examples/data/capitals.txt"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0].split()[2] == "[2]"  # Paris first
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", result.stderr, re.MULTILINE))
    assert "e2rank_core.st_folder" in imported and "transformers" in imported  # the hook saw the imports
    for heavy in ("sentence_transformers", "sklearn", "pandas", "datasets"):
        assert not {name for name in imported if name.split(".")[0] == heavy}, heavy


def _copy(folder: Path, target: Path) -> Path:
    """The bundled folder with its weights linked, not copied."""
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("model.safetensors"))
    (target / "model.safetensors").symlink_to(folder / "model.safetensors")
    return target


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))


@pytest.mark.parametrize(
    ("file", "changes"),
    [
        ("1_Pooling/config.json", {"pooling_mode": "max"}),
        ("1_Pooling/config.json", {"pooling_mode": "weightedmean"}),
        ("1_Pooling/config.json", {"pooling_mode": ["mean", "cls"]}),
        ("1_Pooling/config.json", {"include_prompt": False}),
        ("sentence_bert_config.json", {"transformer_task": "fill-mask"}),
        ("sentence_bert_config.json", {"query_length": 32}),
        ("config_sentence_transformers.json", {"truncate_dim": 128}),
        ("config_sentence_transformers.json", {"model_type": "SparseEncoder"}),
    ],
)
def test_unsupported_settings_are_refused(tmp_path: Path, file: str, changes: dict[str, object]) -> None:
    folder = Path(resolve_model(BUNDLED).path)
    assert read_st_folder(folder) is not None
    copy = _copy(folder, tmp_path / "model")
    _edit(copy / file, **changes)
    assert read_st_folder(copy) is None


def test_unknown_module_is_refused(tmp_path: Path) -> None:
    copy = _copy(Path(resolve_model(BUNDLED).path), tmp_path / "model")
    modules = json.loads((copy / "modules.json").read_text())
    modules[2]["type"] = "sentence_transformers.base.modules.dense.Dense"
    (copy / "modules.json").write_text(json.dumps(modules))
    assert read_st_folder(copy) is None


def test_legacy_pooling_flags_are_read() -> None:
    plan = read_st_folder(resolve_model(MINILM_ID).path)
    assert plan is not None and plan.pooling_mode == "mean" and plan.dimension == 384 and plan.max_seq_length == 256


def test_kwargs_that_change_loading_are_refused() -> None:
    path = resolve_model(BUNDLED).path
    assert load_st_folder(path, device="cpu", model_kwargs={"attn_implementation": "flash_attention_2"}) is None
    assert load_st_folder(path, device="cpu", model_kwargs={"device_map": "cpu"}) is None


def test_unsupported_pooling_falls_back_to_sentence_transformers(tmp_path: Path, capitals) -> None:
    from sentence_transformers import SentenceTransformer

    copy = _copy(Path(resolve_model(BUNDLED).path), tmp_path / "max-pooling")
    _edit(copy / "1_Pooling" / "config.json", pooling_mode="max")
    model = E2RankModel(str(copy), device="cpu")
    assert not model.backend.light_loaded and isinstance(model.backend.encoder, SentenceTransformer)
    expected = SentenceTransformer(str(copy), device="cpu").encode(capitals, normalize_embeddings=True)
    np.testing.assert_allclose(model.embed_documents(capitals), expected, atol=1e-6, rtol=0)


def test_folder_settings_are_applied_like_sentence_transformers(tmp_path: Path) -> None:
    """do_lower_case (a Lowercase normaliser in front) and max_seq_length from sentence_bert_config.json."""
    from sentence_transformers import SentenceTransformer

    copy = _copy(Path(resolve_model(BUNDLED).path), tmp_path / "settings")
    _edit(copy / "sentence_bert_config.json", do_lower_case=True, max_seq_length=64)
    light = load_st_folder(str(copy), device="cpu", model_kwargs={"dtype": torch.float32})
    assert light is not None
    reference = SentenceTransformer(str(copy), device="cpu", model_kwargs={"dtype": torch.float32})
    assert light.max_seq_length == reference.max_seq_length == 64
    ours, theirs = light.tokenizer.backend_tokenizer.normalizer, reference.tokenizer.backend_tokenizer.normalizer
    assert repr(ours) == repr(theirs) and "Lowercase" in repr(ours)
    texts = ["MIXED Case TEXT with ÄÖÜ", *TEXTS]
    features = reference.tokenize(texts)
    with torch.inference_mode():
        assert torch.equal(light(dict(features))["sentence_embedding"], reference(dict(features))["sentence_embedding"])
    assert light.tokenizer(texts)["input_ids"] == reference.tokenizer(texts)["input_ids"]
