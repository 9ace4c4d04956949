"""The latency benchmark's methods run end to end on a tiny real Qwen3, so that the prepared GPU run
(``python benchmarks/latency.py --gpu``, issue #20) cannot rot unnoticed in sessions without a device."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_benchmark

from e2rank_core import E2RankModel


@pytest.fixture(scope="module")
def latency():
    return load_benchmark("latency.py")


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
