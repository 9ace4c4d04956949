"""Shared fixtures: real models that load offline, and the shared IR data folder.

Every model here is real: the packaged all-MiniLM-L6-v2 (encoder), the packaged SmolLM2-135M-Instruct GGUF
(decoder with a ChatML template) and a tiny random Qwen3 built from a config (the official E2Rank
architecture, milliseconds per forward pass).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DATA_DIR = Path(os.environ.get("E2RANK_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))

#: Qwen3's chat template, reduced to the single-user-message path E2Rank uses: with
#: add_generation_prompt and enable_thinking=False it renders
#: <|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


def smollm_gguf_path() -> Path:
    from e2rank_core.resolve import resolve_model

    resolved = resolve_model(SMOLLM_ID)
    assert resolved.gguf_file is not None
    return Path(resolved.path) / resolved.gguf_file


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Qwen3 (2 layers, hidden 64) with a ChatML tokenizer and Qwen3's template, on disk."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3Model

    gguf = smollm_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    tokenizer.pad_token = "<|endoftext|>"
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    torch.manual_seed(0)
    model = Qwen3Model(config).eval()
    folder = tmp_path_factory.mktemp("tiny-qwen3")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_qwen3(tiny_qwen3_dir: Path):
    from e2rank_core import E2RankModel

    return E2RankModel(str(tiny_qwen3_dir), device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def minilm():
    from e2rank_core import E2RankModel

    return E2RankModel(MINILM_ID, device="cpu")


@pytest.fixture(scope="session")
def smollm():
    from e2rank_core import E2RankModel

    return E2RankModel(SMOLLM_ID, device="cpu", dtype="float32")


def load_benchmark(filename: str) -> ModuleType:
    """A script from ``benchmarks/`` as a module (they are scripts, not a package), imported once."""
    name = "e2rank_benchmark_" + Path(filename).stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def require_data(name: str) -> Path:
    """The shared BEIR folder ``name``, or skip with a clear message when ../shared/data is absent."""
    folder = DATA_DIR / name
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"shared IR data not found at {folder} (set E2RANK_DATA_DIR to the shared/data folder)")
    return folder


@pytest.fixture
def capitals() -> list[str]:
    path = Path(__file__).resolve().parents[1] / "examples" / "data" / "capitals.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
