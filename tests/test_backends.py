"""backend="onnx" / "openvino" (and -int8) on the packaged encoder: same rankings as torch, cached exports, errors.

Every export goes into a temporary ``$E2RANK_CACHE``; the module exports each backend once and the later tests reuse
those exports (which is itself one of the things tested).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMOLLM_ID, require_data

from e2rank_core import E2RankModel, runtimes
from e2rank_core.st_folder import LIGHT_LOADER_ENV, TokenizerOnlyEncoder

MODEL = "e2rank/minilm-l6-e2rank"
FLOAT_BACKENDS = ("onnx", "openvino")
INT8_BACKENDS = ("onnx-int8", "openvino-int8")
N_QUERIES, DEPTH = 2, 20
ROOT = Path(__file__).resolve().parents[1]
QUERY = "What is the capital of France?"
TEXTS = [
    "Paris is the capital and most populous city of France.",
    "lorem ipsum dolor sit amet " * 120,  # past max_seq_length: truncated the same way on both paths
    "Ünïcödé façade — 東京は日本の首都です 🚀 naïve café",
    "a special-looking string <|endoftext|> in the middle of a document",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("e2rank-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("E2RANK_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def exports(cache_dir: Path) -> Iterator[dict[str, int]]:
    """How many times each backend was exported while this module ran (the export function, wrapped)."""
    counts: dict[str, int] = {}
    original = runtimes.export_model

    def counting(st_model, backend, *args):
        counts[backend] = counts.get(backend, 0) + 1
        return original(st_model, backend, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtimes, "export_model", counting)
        yield counts


@pytest.fixture(scope="module")
def models(exports: dict[str, int]) -> dict[str, E2RankModel]:
    loaded = {"torch": E2RankModel(MODEL, device="cpu")}
    for backend in (*FLOAT_BACKENDS, *INT8_BACKENDS):
        loaded[backend] = E2RankModel(MODEL, backend=backend)
    loaded["openvino bfloat16"] = E2RankModel(MODEL, backend="openvino", dtype="bfloat16")  # the same export
    return loaded


@pytest.fixture(scope="module")
def trec_queries() -> list[tuple[str, list[str]]]:
    """The first TREC DL 2019 queries with their BM25 top-20 passages (real queries, real candidates)."""
    from e2rank_core.evaluation.data import load_beir, read_run

    folder = require_data("trec-dl-2019")
    collection = load_beir(folder)
    run = read_run(folder / "bm25_top100.trec", depth=DEPTH)
    chosen = islice((qid for qid in collection.queries if qid in run), N_QUERIES)
    return [(collection.queries[qid], [collection.corpus[d] for d in run[qid]]) for qid in chosen]


def top10(model: E2RankModel, query: str, docs: list[str]) -> list[int]:
    return [hit.index for hit in model.rerank(query, docs, top_k=10)]


@pytest.mark.parametrize("backend", FLOAT_BACKENDS)
def test_float32_exports_rank_like_torch(models, trec_queries, backend: str) -> None:
    torch_model, other = models["torch"], models[backend]
    assert other.backend_name == backend and other.device == "cpu"
    for query, docs in trec_queries:
        reference = torch_model.embed_documents(docs)
        vectors = other.embed_documents(docs)
        assert float((reference * vectors).sum(axis=1).min()) >= 1 - 1e-3
        # float32 arithmetic, not only close vectors: OpenVINO would pick bfloat16 on CPUs that have it
        np.testing.assert_allclose(vectors, reference, atol=1e-5, rtol=0)
        prompt = [query]
        cos = float(
            (torch_model.embed_listwise_prompts(prompt, [docs]) * other.embed_listwise_prompts(prompt, [docs])).sum()
        )
        assert cos >= 1 - 1e-3
        assert top10(other, query, docs) == top10(torch_model, query, docs)
        # with reuse: the same document vectors, only the prompt's forward pass differs
        reused = [h.index for h in other.rerank(query, docs, document_embeddings=reference, top_k=10)]
        assert reused == top10(torch_model, query, docs)


@pytest.mark.parametrize("backend", INT8_BACKENDS)
def test_int8_exports_stay_close(models, trec_queries, backend: str) -> None:
    """int8 trades a little accuracy for speed: close vectors, mostly the same top 10 (its cost is benchmarked)."""
    torch_model, other = models["torch"], models[backend]
    overlap = []
    for query, docs in trec_queries:
        assert float((torch_model.embed_documents(docs) * other.embed_documents(docs)).sum(axis=1).min()) >= 0.97
        overlap.append(len(set(top10(other, query, docs)) & set(top10(torch_model, query, docs))) / 10)
    assert np.mean(overlap) >= 0.7


def test_openvino_bfloat16_is_asked_for_and_stays_close(models, trec_queries) -> None:
    """dtype='bfloat16' with OpenVINO: bfloat16 arithmetic on the float32 export (no new export), close rankings."""
    torch_model, fast = models["torch"], models["openvino bfloat16"]
    assert fast.backend.runtime_dtype == torch.bfloat16 and models["openvino"].backend.runtime_dtype == torch.float32
    assert fast._namespace != models["openvino"]._namespace  # its vectors never mix with float32 ones in a cache
    overlap = []
    for query, docs in trec_queries:
        assert float((torch_model.embed_documents(docs) * fast.embed_documents(docs)).sum(axis=1).min()) >= 0.999
        overlap.append(len(set(top10(fast, query, docs)) & set(top10(torch_model, query, docs))) / 10)
    assert np.mean(overlap) >= 0.8


def test_openvino_bfloat16_without_cpu_support_computes_float32(
    models, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A CPU without bfloat16 (as OpenVINO reports it) gets float32 and a warning, not an error or slow emulation."""
    import openvino as ov

    class CoreWithoutBf16(ov.Core):  # the real runtime; only the capability list drops BF16, as on an AVX2 CPU
        def get_property(self, device, name):
            value = super().get_property(device, name)
            return [c for c in value if c != "BF16"] if name == "OPTIMIZATION_CAPABILITIES" else value

    monkeypatch.setattr(ov, "Core", CoreWithoutBf16)
    with caplog.at_level(logging.WARNING, logger="e2rank"):
        model = E2RankModel(MODEL, backend="openvino", dtype="bfloat16", cache_size=0)
    assert "no bfloat16 support" in caplog.text
    np.testing.assert_allclose(
        model.embed_documents(TEXTS), models["openvino"].embed_documents(TEXTS), atol=1e-6, rtol=0
    )


def test_export_happens_once_and_is_reused(models, exports: dict[str, int], cache_dir: Path) -> None:
    assert exports == {b: 1 for b in (*FLOAT_BACKENDS, *INT8_BACKENDS)}
    folders = sorted(p for p in (cache_dir / "exports").iterdir() if not p.name.startswith("."))
    assert len(folders) == 4  # one per backend, no leftover staging folders
    onnx_file = next(
        f / "model.onnx" for f in folders if json.loads((f / "e2rank-export.json").read_text())["backend"] == "onnx"
    )
    before = onnx_file.stat().st_mtime_ns
    again = E2RankModel(MODEL, backend="ONNX")  # spelled differently: the same backend, the same export
    assert exports["onnx"] == 1 and onnx_file.stat().st_mtime_ns == before
    docs = ["Paris is the capital of France.", "Berlin is the capital of Germany."]
    np.testing.assert_allclose(again.embed_documents(docs), models["onnx"].embed_documents(docs), atol=1e-6)


def test_cached_export_loads_no_torch_model(models, monkeypatch: pytest.MonkeyPatch, capitals: list[str]) -> None:
    """Issue #20: with the export cached, only the tokenizer and the folder's settings load, and nothing changes."""
    fast = E2RankModel(MODEL, backend="onnx", cache_size=0)
    backend = fast.backend
    assert runtimes.cached_export_file("onnx", backend.resolved.path) is not None
    assert not backend.torch_model_loaded and backend.light_loaded
    assert isinstance(backend.encoder, TokenizerOnlyEncoder)
    monkeypatch.setenv(LIGHT_LOADER_ENV, "0")  # the opt-out: as before, the SentenceTransformer is loaded
    plain = E2RankModel(MODEL, backend="onnx", cache_size=0)
    assert plain.backend.torch_model_loaded and not plain.backend.light_loaded
    ours, theirs = fast.rerank(QUERY, capitals), plain.rerank(QUERY, capitals)
    assert [h.index for h in ours] == [h.index for h in theirs]
    np.testing.assert_allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-6, rtol=0)
    np.testing.assert_allclose(fast.embed_documents(TEXTS), plain.embed_documents(TEXTS), atol=1e-6, rtol=0)
    np.testing.assert_allclose(fast.embed_queries([QUERY]), plain.embed_queries([QUERY]), atol=1e-6, rtol=0)
    # everything read from the encoder: the same values as from the SentenceTransformer
    st_model = plain.backend.st_model
    assert type(backend.tokenizer) is type(st_model.tokenizer)
    assert backend.tokenizer(TEXTS)["input_ids"] == st_model.tokenizer(TEXTS)["input_ids"]
    assert backend.encoder.max_seq_length == st_model.max_seq_length == backend.max_document_tokens
    assert backend.prompts == st_model.prompts and backend.dimension == st_model.get_embedding_dimension()
    assert backend.dtype == st_model.dtype == torch.float32
    assert fast._namespace == plain._namespace and fast.plain_queries == plain.plain_queries


def test_exports_from_the_cached_float_onnx_load_no_torch_model(models, exports: dict[str, int]) -> None:
    """Only tracing the float32 ONNX export needs the PyTorch model: the others are made from that cached file."""
    assert models["onnx"].backend.torch_model_loaded  # loaded first, with nothing cached: it traced the export
    for backend in ("openvino", *INT8_BACKENDS):  # loaded after it, each exported here (once) from its file
        assert exports[backend] == 1
        assert not models[backend].backend.torch_model_loaded, backend
        assert isinstance(models[backend].backend.encoder, TokenizerOnlyEncoder)
    path = models["onnx"].backend.resolved.path
    assert not runtimes.export_needs_torch_model("onnx-int8", path)
    assert runtimes.export_needs_torch_model("torch", path)


def test_st_model_after_a_load_without_torch_model(models) -> None:
    from sentence_transformers import SentenceTransformer

    fast = E2RankModel(MODEL, backend="onnx", cache_size=0)
    backend = fast.backend
    assert not backend.torch_model_loaded
    before = fast.embed_documents(TEXTS)
    st_model = backend.st_model  # loaded on demand, as after a light load
    assert isinstance(st_model, SentenceTransformer) and not st_model.training
    assert backend.torch_model_loaded and backend.encoder is st_model and backend.st_model is st_model
    exporter = models["onnx"].backend  # loaded before the export existed: its SentenceTransformer made the export
    assert exporter.torch_model_loaded and not exporter.light_loaded
    reference = exporter.st_model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(st_model.encode(TEXTS, normalize_embeddings=True), reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(before, reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(fast.embed_documents(TEXTS), before, atol=1e-6, rtol=0)  # still the exported graph


def test_cli_with_cached_export_never_imports_the_modeling_code(models) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # E2RANK_CACHE: the module's cache
    env.pop(LIGHT_LOADER_ENV, None)
    command = [sys.executable, "-X", "importtime", "-m", "e2rank_core.cli", "rerank", "--backend", "onnx"]
    result = subprocess.run(
        [*command, "--query", QUERY, "examples/data/capitals.txt"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0].split()[2] == "[2]"  # Paris first
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", result.stderr, re.MULTILINE))
    assert {"transformers", "onnxruntime", "e2rank_core.st_folder"} <= imported  # the hook saw the imports
    for heavy in ("transformers.modeling_utils", "transformers.processing_utils", "sentence_transformers"):
        assert not {name for name in imported if name == heavy or name.startswith(heavy + ".")}, heavy


def test_cli_rerank_with_onnx(models, capsys: pytest.CaptureFixture[str], capitals: list[str]) -> None:
    from e2rank_core.cli import main

    path = Path(__file__).resolve().parents[1] / "examples" / "data" / "capitals.txt"
    query = "What is the capital of France?"
    assert main(["rerank", "--query", query, str(path), "--backend", "onnx", "--jsonl"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["index"] for row in printed] == [h.index for h in models["torch"].rerank(query, capitals)]
    assert main(["rerank", "--query", query, str(path), "--backend", "tensorrt"]) == 2
    assert "backend must be one of" in capsys.readouterr().err


def test_langchain_reranker_with_onnx(models, capitals: list[str]) -> None:
    from langchain_core.documents import Document
    from langchain_e2rank import E2RankRerank

    query = "What is the capital of France?"
    reranker = E2RankRerank(model=MODEL, backend="onnx", top_n=5)
    assert reranker.e2rank_model.backend_name == "onnx"
    assert reranker.e2rank_model is not E2RankRerank(model=MODEL, top_n=5).e2rank_model  # the backend is in the key
    kept = reranker.compress_documents([Document(page_content=t) for t in capitals], query)
    assert [d.page_content for d in kept] == [h.document for h in models["torch"].rerank(query, capitals, top_k=5)]
    with pytest.raises(ValueError, match="backend must be one of"):
        E2RankRerank(model=MODEL, backend="onnx2")


def test_haystack_ranker_serialises_the_backend() -> None:
    from haystack_integrations.components.rankers.e2rank import E2RankRanker

    ranker = E2RankRanker(model=MODEL, backend="openvino")
    assert ranker.device.to_torch_str() == "cpu"
    data = ranker.to_dict()
    assert data["init_parameters"]["backend"] == "openvino"
    assert E2RankRanker.from_dict(data).model_settings().backend == "openvino"


def test_unsupported_pairs_are_clear_errors(tiny_qwen3_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"does not serve GGUF models.*backend='torch'"):
        E2RankModel(SMOLLM_ID, backend="onnx")
    with pytest.raises(ValueError, match=r"does not serve decoder models.*qwen3"):
        E2RankModel(str(tiny_qwen3_dir), backend="openvino")
    with pytest.raises(ValueError, match="backend must be one of torch, onnx"):
        E2RankModel(MODEL, backend="tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU"):
        E2RankModel(MODEL, backend="onnx", device="cuda")
    with pytest.raises(ValueError, match="exports float32"):
        E2RankModel(MODEL, backend="onnx", dtype="float16")
    with pytest.raises(ValueError, match="bfloat16 arithmetic: backend='openvino'"):
        E2RankModel(MODEL, backend="onnx-int8", dtype="bfloat16")
    with pytest.raises(ValueError, match="exports float32"):
        E2RankModel(MODEL, backend="openvino", dtype="float16")


def test_missing_runtime_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"e2rank\[openvino\]"):
        runtimes.require_runtime("openvino")
