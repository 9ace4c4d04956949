"""The latency benchmark's methods run end to end on a tiny real Qwen3, so that the prepared GPU run
(``python benchmarks/latency.py --gpu``, issue #20) cannot rot unnoticed in sessions without a device."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from e2rank_core import E2RankModel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def latency():
    spec = importlib.util.spec_from_file_location("e2rank_latency_benchmark", ROOT / "benchmarks" / "latency.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_method_runs_on_one_backbone(latency, tiny_qwen3_dir: Path) -> None:
    model = E2RankModel(str(tiny_qwen3_dir), device="cpu", cache_size=0)
    lm = latency.causal_lm(str(tiny_qwen3_dir), None)
    docs = [f"Document {i} says something about topic {i % 3}." for i in range(25)]  # two generation windows
    rows = latency.bench_backbone("tiny Qwen3", model, lm, docs, repeats=1)
    assert set(rows) == {"e2rank_reuse", "e2rank_full", "prompt_forward", "pointwise", "listwise_generation"}
    assert all(row["median_s"] > 0 for row in rows.values())
    assert model.encoded_texts > 0  # the rows really went through the model


def test_machine_records_what_the_kernels_can_use(latency) -> None:
    machine = latency.machine()
    assert machine["cores"] >= 1 and isinstance(machine["cpu_features"], list)
    assert set(machine["cpu_features"]) <= {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"}
