"""Per-query cost of reranking N candidates: E2Rank against pointwise and listwise-generation rerankers.

Run: ``python benchmarks/latency.py`` (CPU: about 10 minutes; ``--quick`` for a smoke run). ``--gpu`` (one CUDA
device, a few minutes) measures the official E2Rank-0.6B and -4B shapes at full depth in bfloat16 into
``benchmarks/results/gpu.{md,json}``, the device's name beside every figure. Writes
``benchmarks/results/latency.{md,json,png}``. ``--backends`` (about 8 minutes) instead measures the packaged encoder
on each CPU backend (torch, ONNX, OpenVINO and their int8 variants: rerank with and without reuse, embedding
throughput, nDCG@10 on a TREC DL 2019 subset), the CPU's limited batches against full batches, and the cold
start of ``e2rank rerank``, into
``benchmarks/results/backends.{md,json,png}``. ``--cold-start-only`` (about 5 minutes) measures only that cold start,
with the light loader and without it (``E2RANK_LIGHT_LOADER=0``) and with ``--backend onnx`` from a cached export,
into ``benchmarks/results/cold_start.{md,json}``.

Every method runs on the same backbone and the same 100 candidates of about 128 tokens (real TREC DL 2019
passages when ../shared/data is present):

* ``e2rank_reuse``: E2Rank with the document embeddings kept from retrieval: one forward pass of the prompt;
* ``e2rank_full``: E2Rank encoding the 100 documents too (no cache);
* ``pointwise``: cross-encoder-style scoring, one forward pass per (query, document) pair, batch 32;
* ``listwise_generation``: RankGPT-style, windows of 20 with stride 10 from the back, greedy generation of a
  permutation (80 new tokens per window) with a causal-LM head on the same backbone;
* ``prompt_forward``: a bare forward pass of the same prompt tokens (the floor for ``e2rank_reuse``).

Backbones: the official E2Rank-0.6B architecture (Qwen3, hidden 1024, 16 heads, 8 KV heads) with random weights,
since latency does not depend on the weights (layers reduced on CPU, reported in the table), and the packaged
SmolLM2-135M (decoder) and all-MiniLM-L6-v2 (encoder; no generation head, so no listwise-generation row).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import torch

from e2rank_core.runtimes import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("E2RANK_DATA_DIR", ROOT.parent / "shared" / "data"))
QUERY = "what is the definition of a causal relationship in statistics"
DOC_TOKENS = 128
WINDOW, STRIDE, GENERATED_TOKENS = 20, 10, 80


# ----------------------------------------------------------------------------------------------- measurement
class PeakMemory:
    """Peak resident memory above the starting point while the block runs (sampled every 2 ms)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def measure(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> dict[str, float]:
    """Median wall time of ``fn`` (CUDA work synchronised before the clock stops) and peak memory: resident on the
    CPU, allocated on the GPU when CUDA is in use."""
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if warm_up:
        fn()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    with PeakMemory() as memory:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize()  # kernels run asynchronously: wait for them before reading the clock
            times.append(time.perf_counter() - start)
    row = {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats, "peak_mib": memory.mib}
    if cuda:
        row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


# ----------------------------------------------------------------------------------------------- inputs
def candidate_texts(tokenizer, n: int) -> list[str]:
    """``n`` texts of about DOC_TOKENS tokens: real passages glued together and cut on a token boundary."""
    passages: list[str] = []
    corpus = DATA / "trec-dl-2019" / "corpus.jsonl"
    if corpus.is_file():
        with corpus.open(encoding="utf-8") as handle:
            passages = [json.loads(line)["text"] for _, line in zip(range(4 * n), handle, strict=False)]
    else:
        passages = [f"Passage {i} discusses causal relationships, correlation and statistics." for i in range(4 * n)]
    texts, buffer = [], ""
    for passage in passages:
        buffer = f"{buffer} {passage}".strip()
        encoded = tokenizer(buffer, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        if len(encoded["input_ids"]) >= DOC_TOKENS:
            texts.append(buffer[: encoded["offset_mapping"][DOC_TOKENS - 1][1]])
            buffer = ""
        if len(texts) == n:
            return texts
    while len(texts) < n:
        texts.append(texts[len(texts) % max(1, len(texts))] if texts else "padding text " * 40)
    return texts


# The official checkpoints' Qwen3 shapes (E2Rank-0.6B / -4B are Qwen3-Embedding-0.6B / -4B fine-tuned).
SHAPES: dict[str, dict[str, int]] = {
    "E2Rank-0.6B": {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16},
    "E2Rank-4B": {"hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32},
}


def official_architecture_dir(
    layers: int | None, folder: Path, shape: str = "E2Rank-0.6B", dtype: torch.dtype = torch.float32,
    device: str = "cpu",
) -> Path:  # fmt: skip
    """An official E2Rank Qwen3 configuration (``shape``; ``layers`` of its layers, all when None) with random
    weights in ``dtype`` (built on ``device``, saved in that dtype), ChatML tokenizer, on disk."""
    from conftest import QWEN3_CHAT_TEMPLATE, smollm_gguf_path
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    gguf = smollm_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    tokenizer.pad_token = "<|endoftext|>"
    dims = dict(SHAPES[shape])
    if layers is not None:
        dims["num_hidden_layers"] = layers
    config = Qwen3Config(
        vocab_size=151669,
        **dims,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=32768,
        rope_theta=1_000_000,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    torch.manual_seed(0)
    with torch.device(device):  # a 4B model is built where it runs, in its dtype, not first in float32 on the CPU
        Qwen3ForCausalLM(config).to(dtype).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def causal_lm(model_dir: str, gguf_file: str | None, device: str = "cpu", dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForCausalLM

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, **kwargs).to(device).eval()


# ----------------------------------------------------------------------------------------------- methods
def bench_backbone(name: str, model, lm, docs: list[str], repeats: int) -> dict[str, dict[str, float]]:
    from e2rank_core.prompts import listwise_prompt_content

    backend = model.backend
    embeddings = model.embed_documents(docs)
    rows: dict[str, dict[str, float]] = {}
    rows["e2rank_reuse"] = measure(lambda: model.rerank(QUERY, docs, document_embeddings=embeddings), repeats)
    rows["e2rank_full"] = measure(lambda: model.rerank(QUERY, docs), max(1, repeats // 3))

    prompt_ids = backend.encode_prompt(QUERY, docs[: model.num_input_docs]).input_ids
    features = backend.pad_batch([prompt_ids])

    @torch.inference_mode()
    def bare_forward() -> None:
        backend.encoder(dict(features))

    rows["prompt_forward"] = measure(bare_forward, repeats)

    pairs = [backend.encode_texts([f"Query: {QUERY}\nDocument: {d}"], kind="document")[0].input_ids for d in docs]
    rows["pointwise"] = measure(lambda: backend.embed_ids(pairs, batch_size=32), max(1, repeats // 3))

    if lm is not None:
        tokenizer = backend.tokenizer

        @torch.inference_mode()
        def rankgpt() -> None:
            end = len(docs)
            start = max(0, end - WINDOW)
            while True:
                content = listwise_prompt_content(QUERY, docs[start:end])
                text = tokenizer.apply_chat_template(
                    [{"role": "user", "content": content}],
                    tokenize=False,
                    add_generation_prompt=True,
                    enable_thinking=False,
                )
                ids = torch.tensor([tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]])
                ids = ids.to(lm.device)
                lm.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=GENERATED_TOKENS,
                    min_new_tokens=GENERATED_TOKENS,
                    do_sample=False,
                    pad_token_id=backend.family.pad_id,
                )
                if start == 0:
                    break
                end -= STRIDE
                start = max(0, start - STRIDE)

        # One timed run: the backbone is already warm from the rows above, and a run takes minutes on a CPU.
        rows["listwise_generation"] = measure(rankgpt, 1, warm_up=False)
    print(f"  {name}: " + ", ".join(f"{k} {v['median_s'] * 1000:.0f} ms" for k, v in rows.items()), flush=True)
    return rows


def curves(model, tokenizer, repeats: int) -> dict[str, list[dict[str, float]]]:
    docs = candidate_texts(tokenizer, 200)
    embeddings = model.embed_documents(docs)
    by_n = []
    for n in (20, 50, 100, 200):
        reuse = measure(lambda n=n: model.rerank(QUERY, docs[:n], document_embeddings=embeddings[:n]), repeats)
        full = measure(lambda n=n: model.rerank(QUERY, docs[:n]), 1)
        by_n.append({"n": n, "reuse_s": reuse["median_s"], "full_s": full["median_s"]})
    by_k = []
    for k in (5, 10, 20, 40):
        reuse = measure(
            lambda k=k: model.rerank(QUERY, docs[:100], document_embeddings=embeddings[:100], num_input_docs=k), repeats
        )
        by_k.append({"num_input_docs": k, "reuse_s": reuse["median_s"]})
    return {"by_n": by_n, "by_num_input_docs": by_k}


def encode_throughput(repeats: int) -> dict[str, float]:
    """embed_documents against plain sentence-transformers encode on the same 256 texts (MiniLM)."""
    from sentence_transformers import SentenceTransformer

    from e2rank_core import E2RankModel

    model = E2RankModel("sentence-transformers/all-MiniLM-L6-v2", device="cpu", cache_size=0)
    plain = SentenceTransformer(model.backend.resolved.path, device="cpu")
    texts = candidate_texts(model.backend.tokenizer, 256)
    ours = measure(lambda: model.embed_documents(texts, show_progress_bar=False), repeats)
    theirs = measure(lambda: plain.encode(texts, batch_size=32, normalize_embeddings=True), repeats)
    return {
        "e2rank_s": ours["median_s"],
        "sentence_transformers_s": theirs["median_s"],
        "ratio": ours["median_s"] / theirs["median_s"],
        "texts": len(texts),
    }


def machine() -> dict[str, object]:
    cpu, flags = "unknown", set()
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    return {
        "cpu": cpu,
        # what the runtimes' kernels can use: int8 and bfloat16 speed depend on these more than on the clock
        "cpu_features": [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags],
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews every timing
    }


# ----------------------------------------------------------------------------------------------- report
def write_report(result: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latency.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Latency: reranking N=100 candidates of ~128 tokens, one query",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, torch "
        f"{result['machine']['torch']}, {result['machine']['torch_threads']} threads, GPU: "
        f"{result['machine']['gpu'] or 'none'}. Medians after a warm-up. Command: `python benchmarks/latency.py`.",
        "",
        "CPU backends (ONNX, OpenVINO, int8) and cold start: [backends.md](backends.md) "
        "(`python benchmarks/latency.py --backends`).",
        "",
    ]
    order = ["prompt_forward", "e2rank_reuse", "e2rank_full", "pointwise", "listwise_generation"]
    for name, rows in result["backbones"].items():
        lines += [f"## {name}", "", "| method | median ms | × e2rank_reuse | peak MiB |", "|---|---:|---:|---:|"]
        reuse = rows["e2rank_reuse"]["median_s"]
        for method in order:
            if method in rows:
                row = rows[method]
                lines.append(
                    f"| {method} | {row['median_s'] * 1000:.1f} | {row['median_s'] / reuse:.2f} | "
                    f"{row['peak_mib']:.0f} |"
                )
        floor = rows["prompt_forward"]["median_s"]
        lines += ["", f"- reuse vs bare prompt forward: {reuse / floor:.3f}× (target ≤ 1.10)"]
        lines.append(f"- pointwise / reuse: {rows['pointwise']['median_s'] / reuse:.1f}× (target ≥ 4)")
        if "listwise_generation" in rows:
            lines.append(
                f"- listwise generation / reuse: {rows['listwise_generation']['median_s'] / reuse:.1f}× (target ≥ 20)"
            )
        lines.append("")
    enc = result["encode_throughput"]
    lines += [
        "## embed_documents vs sentence-transformers encode (all-MiniLM-L6-v2)",
        "",
        f"{enc['texts']} texts: e2rank {enc['e2rank_s'] * 1000:.0f} ms, sentence-transformers "
        f"{enc['sentence_transformers_s'] * 1000:.0f} ms, ratio {enc['ratio']:.3f} (target ≤ 1.05)",
        "",
    ]
    if result.get("curves"):
        lines += [
            "## Cost against N and num_input_docs (E2Rank-0.6B architecture)",
            "",
            "| N | reuse ms | full ms |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {r['n']} | {r['reuse_s'] * 1000:.1f} | {r['full_s'] * 1000:.1f} |" for r in result["curves"]["by_n"]
        ]
        lines += ["", "| num_input_docs | reuse ms (N=100) |", "|---:|---:|"]
        lines += [
            f"| {r['num_input_docs']} | {r['reuse_s'] * 1000:.1f} |" for r in result["curves"]["by_num_input_docs"]
        ]
    (folder / "latency.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(result, folder / "latency.png")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2 if result.get("curves") else 1, figsize=(12, 4.5), squeeze=False)
    axis = axes[0][0]
    methods = ["prompt_forward", "e2rank_reuse", "e2rank_full", "pointwise", "listwise_generation"]
    names = list(result["backbones"])
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        rows = result["backbones"][name]
        values = [rows[m]["median_s"] * 1000 if m in rows else np.nan for m in methods]
        axis.bar(np.arange(len(methods)) + i * width, values, width, label=name)
    axis.set_xticks(np.arange(len(methods)) + width * (len(names) - 1) / 2, methods, rotation=20)
    axis.set_yscale("log")
    axis.set_ylabel("ms per query (log)")
    axis.set_title("Reranking 100 candidates")
    axis.legend(fontsize=8)
    if result.get("curves"):
        axis = axes[0][1]
        by_n = result["curves"]["by_n"]
        axis.plot([r["n"] for r in by_n], [r["reuse_s"] * 1000 for r in by_n], "o-", label="E2Rank, reused embeddings")
        axis.plot([r["n"] for r in by_n], [r["full_s"] * 1000 for r in by_n], "s-", label="E2Rank, encoding documents")
        axis.set_xlabel("candidates N")
        axis.set_ylabel("ms per query")
        axis.set_title("Cost against N (E2Rank-0.6B architecture)")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# ----------------------------------------------------------------------------------------------- backends (#20)
#: row name -> (backend, dtype): every backend in float32, plus bfloat16 arithmetic where the CPU has it
BACKEND_ROWS = {
    **{name: (name, None) for name in BACKENDS},
    "torch bfloat16": ("torch", "bfloat16"),
    "openvino bfloat16": ("openvino", "bfloat16"),
}
MAIN_COMMAND = ["rerank", "--query", "What is the capital of France?", "examples/data/capitals.txt"]
ONNX_CACHED = "e2rank rerank --backend onnx (export cached)"


def cold_start(runs: int, onnx: bool = True, before: bool = False) -> dict[str, dict[str, float]]:
    """Wall time of fresh processes: the README's main command (torch, onnx) against importing torch + transformers.

    ``onnx``: also the main command with ``--backend onnx``, its export made once beforehand into a temporary
    ``$E2RANK_CACHE``, so that every timed run finds it cached (and loads no PyTorch model). ``before``: also the main
    command with ``E2RANK_LIGHT_LOADER=0`` (the model loaded through sentence-transformers, as before the light
    loader), and the bare ``AutoModel.from_pretrained`` of the bundled model (the floor for any transformers-based
    load). Every figure comes with all its runs and the ratio of medians to the import.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="e2rank-cold-start-") as cache:
        return _cold_start(runs, onnx, before, cache)


def _cold_start(runs: int, onnx: bool, before: bool, cache: str) -> dict[str, dict[str, float]]:
    import subprocess

    e2rank = str(Path(sys.executable).with_name("e2rank"))
    base_name = "python -c 'import torch, transformers'"
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        base_name: ([sys.executable, "-c", "import torch, transformers"], {}),
        "e2rank rerank (README main command)": ([e2rank, *MAIN_COMMAND], {"E2RANK_LIGHT_LOADER": "1"}),
    }
    if before:
        # the least any transformers-based load pays: import its modeling stack and read the weights, nothing else
        bundled = str(ROOT / "e2rank_core" / "models" / "minilm-l6-e2rank")
        load = "import torch; from transformers import AutoModel; "
        load += f"AutoModel.from_pretrained({bundled!r}, dtype=torch.float32)"
        commands["python -c 'AutoModel.from_pretrained(bundled model)' (transformers alone)"] = (
            [sys.executable, "-c", load],
            {},
        )
        commands["E2RANK_LIGHT_LOADER=0 e2rank rerank (sentence-transformers load)"] = (
            [e2rank, *MAIN_COMMAND],
            {"E2RANK_LIGHT_LOADER": "0"},
        )
    if onnx:
        commands[ONNX_CACHED] = ([e2rank, *MAIN_COMMAND, "--backend", "onnx"], {"E2RANK_CACHE": cache})
        # the export, once, untimed: the timed runs all find it cached
        subprocess.run(commands[ONNX_CACHED][0], cwd=ROOT, capture_output=True, check=True,
                       env={**os.environ, **commands[ONNX_CACHED][1]})  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so that a busy moment on the machine hits every command alike
        for name, (command, env) in commands.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True, env={**os.environ, **env})
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times[base_name])
    return {
        n: {"median_s": statistics.median(t), "ratio": statistics.median(t) / base, "runs_s": [round(x, 2) for x in t]}
        for n, t in times.items()
    }


def save_json(result: dict, path: Path) -> None:
    """A report's raw numbers, next to its table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def write_cold_start_report(result: dict, folder: Path) -> None:
    """``cold_start.{md,json}``: the cold-start table alone (``--cold-start-only``)."""
    save_json(result, folder / "cold_start.json")
    m = result["machine"]
    lines = [
        "# Cold start of the README's main command (issue #20)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, Python {m['python']}. Command: "
        f"`python benchmarks/latency.py --cold-start-only` ({result['runs']} fresh processes per command, "
        "interleaved; medians). 1-minute load average at the start / end: "
        f"{result['load_average_start']} / {result['load_average_end']} (other work on the machine slows every "
        "command; the ratios are taken within this one run). Main command: "
        f"`e2rank {' '.join(repr(a) if ' ' in a else a for a in MAIN_COMMAND)}` on the bundled "
        "`e2rank/minilm-l6-e2rank`."
        + (
            f" `{ONNX_CACHED}`: the same command with `--backend onnx`, its export made once before timing in a "
            "temporary `$E2RANK_CACHE`, so that every timed run loads only the tokenizer, the folder's settings and "
            "the ONNX graph (no PyTorch model, no `transformers.modeling_utils`)."
            if ONNX_CACHED in result["cold_start"]
            else ""
        ),
        "",
        "| command | median s | × import torch, transformers | runs s |",
        "|---|---:|---:|---|",
    ]
    for name, r in result["cold_start"].items():
        runs = ", ".join(f"{x:.2f}" for x in r["runs_s"])
        lines.append(f"| `{name}` | {r['median_s']:.2f} | {r['ratio']:.2f} | {runs} |")
    (folder / "cold_start.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def bench_backends(n_queries: int, depth: int, full_queries: int) -> dict:
    """Each backend on the packaged encoder: rerank with reuse, without, embed_documents throughput, nDCG@10."""
    import ir_measures
    from ir_measures import nDCG

    from e2rank_core import E2RankModel
    from e2rank_core.evaluation.data import load_beir, read_run

    folder = DATA / "trec-dl-2019"
    collection = load_beir(folder)
    run = read_run(folder / "bm25_top100.trec", depth=depth)
    qids = [q for q in collection.queries if q in run][:n_queries]
    models, load_s = {}, {}
    for row_name, (backend, dtype) in BACKEND_ROWS.items():
        start = time.perf_counter()
        models[row_name] = E2RankModel("e2rank/minilm-l6-e2rank", backend=backend, dtype=dtype, cache_size=0)
        load_s[row_name] = time.perf_counter() - start
        models[row_name].embed_documents(["warm-up"])
    names = list(models)
    embed: dict[str, list[float]] = {n: [] for n in names}
    reuse: dict[str, list[float]] = {n: [] for n in names}
    full: dict[str, list[float]] = {n: [] for n in names}
    ranking: dict[str, dict[str, dict[str, float]]] = {n: {} for n in names}
    top10s: dict[str, list[list[str]]] = {n: [] for n in names}
    # interleaved: every query goes through every backend, in an order rotated per query, so that a slow spell of a
    # shared machine hits all rows alike instead of whichever row was running then
    for k, qid in enumerate(qids):
        docs = [collection.corpus[d] for d in run[qid]]
        for name in names[k % len(names) :] + names[: k % len(names)]:
            model = models[name]
            start = time.perf_counter()
            vectors = model.embed_documents(docs, show_progress_bar=False)
            embed[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            hits = model.rerank(collection.queries[qid], docs, document_embeddings=vectors)
            reuse[name].append(time.perf_counter() - start)
            ranking[name][qid] = {run[qid][h.index]: h.score for h in hits}
            top10s[name].append([run[qid][h.index] for h in hits[:10]])
            if k < full_queries:
                start = time.perf_counter()
                model.rerank(collection.queries[qid], docs)
                full[name].append(time.perf_counter() - start)
    qrels = {q: collection.qrels[q] for q in qids}
    rows = {
        name: {
            "load_s": load_s[name],
            "reuse_ms": 1000 * statistics.median(reuse[name]),
            "full_ms": 1000 * statistics.median(full[name]),
            "docs_per_s": depth / statistics.median(embed[name]),
            "ndcg10": ir_measures.calc_aggregate([nDCG @ 10], qrels, ranking[name])[nDCG @ 10],
        }
        for name in names
    }
    del models
    bm25 = {q: {d: float(depth - i) for i, d in enumerate(run[q])} for q in qids}
    for name, row in rows.items():
        row["same_top10"] = sum(a == b for a, b in zip(top10s[name], top10s["torch"], strict=True)) / len(qids)
        row["reuse_speedup"] = rows["torch"]["reuse_ms"] / row["reuse_ms"]
        row["full_speedup"] = rows["torch"]["full_ms"] / row["full_ms"]
        row["throughput_ratio"] = row["docs_per_s"] / rows["torch"]["docs_per_s"]
    return {
        "subset": f"TREC DL 2019, first {len(qids)} judged queries, BM25 top-{depth}",
        "full_queries": full_queries,
        "bm25_ndcg10": ir_measures.calc_aggregate([nDCG @ 10], {q: collection.qrels[q] for q in qids}, bm25)[nDCG @ 10],
        "rows": rows,
    }


def bench_padding(n_queries: int, depth: int, backends: tuple[str, ...] = ("torch", "onnx")) -> dict:
    """embed_documents with the CPU's limited batches against full length-sorted batches, interleaved per query in
    one run (``backend.CPU_PADDING_LIMIT`` and ``CPU_MAX_BATCH_TOKENS`` set to None: the batches accelerators keep)."""
    from e2rank_core import E2RankModel
    from e2rank_core import backend as backend_module
    from e2rank_core.evaluation.data import load_beir, read_run

    folder = DATA / "trec-dl-2019"
    collection = load_beir(folder)
    run = read_run(folder / "bm25_top100.trec", depth=depth)
    qids = [q for q in collection.queries if q in run][:n_queries]
    limit, budget = backend_module.CPU_PADDING_LIMIT, backend_module.CPU_MAX_BATCH_TOKENS
    rows: dict[str, dict[str, float]] = {}
    for name in backends:
        model = E2RankModel("e2rank/minilm-l6-e2rank", backend=name, cache_size=0)
        model.embed_documents(["warm-up"])
        times: dict[str, list[float]] = {"full": [], "limited": []}
        largest = 0.0
        try:
            for qid in qids:
                docs = [collection.corpus[d] for d in run[qid]]
                vectors = {}
                for setting, (padding, tokens) in (("full", (None, None)), ("limited", (limit, budget))):
                    backend_module.CPU_PADDING_LIMIT, backend_module.CPU_MAX_BATCH_TOKENS = padding, tokens
                    start = time.perf_counter()
                    vectors[setting] = model.embed_documents(docs)
                    times[setting].append(time.perf_counter() - start)
                largest = max(largest, float(np.abs(vectors["full"] - vectors["limited"]).max()))
        finally:
            backend_module.CPU_PADDING_LIMIT, backend_module.CPU_MAX_BATCH_TOKENS = limit, budget
        full, limited = statistics.median(times["full"]), statistics.median(times["limited"])
        rows[name] = {
            "full_docs_per_s": depth / full,
            "limited_docs_per_s": depth / limited,
            "speedup": full / limited,
            "max_abs_diff": largest,
        }
        del model
    subset = f"TREC DL 2019, first {len(qids)} judged queries, BM25 top-{depth}"
    return {"subset": subset, "limit": limit, "max_tokens": budget, "rows": rows}


def write_backends_report(result: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "backends.json").write_text(json.dumps(result, indent=2))
    m = result["machine"]
    b = result["backends"]
    lines = [
        "# CPU backends of the packaged encoder (issue #20)",
        "",
        f"Machine: {m['cpu']} ({', '.join(m.get('cpu_features') or ['features not recorded'])}), {m['cores']} cores "
        "(1-minute load average at the start: "
        f"{m.get('load_average_1min', 'not recorded')}), torch {m['torch']}, "
        f"GPU: {m['gpu'] or 'none'}. Command: `python benchmarks/latency.py --backends`. Model: "
        "`e2rank/minilm-l6-e2rank`, batch 32, float32 arithmetic unless the row says bfloat16 (int8 rows: int8 "
        "weights). Set: "
        f"{b['subset']} (nDCG@10 of the BM25 order: {b['bm25_ndcg10']:.4f}). Timings are medians over the queries "
        f"(rerank without reuse: first {b['full_queries']} queries); every query goes through every row in turn "
        "(order rotated per query); ratios are against torch in the same run.",
        "",
        "| backend | rerank with reuse ms | × torch | rerank without reuse ms | × torch | embed_documents docs/s "
        "| × torch | nDCG@10 | same top 10 as torch | load s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in b["rows"].items():
        lines.append(
            f"| {name} | {r['reuse_ms']:.1f} | {r['reuse_speedup']:.2f} | {r['full_ms']:.0f} | {r['full_speedup']:.2f} "
            f"| {r['docs_per_s']:.1f} | {r['throughput_ratio']:.2f} | {r['ndcg10']:.4f} | {r['same_top10']:.0%} "
            f"| {r['load_s']:.1f} |"
        )
    lines += [
        "",
        "× torch: how many times faster than torch (above 1 is faster). Same top 10: the share of queries whose "
        "reranked top 10 (ids and order; each row reranks with its own document vectors) equals float32 torch's. "
        "GPU rows (half precision, fused attention, the full-depth E2Rank-0.6B architecture): not measured (no GPU "
        "lent in this session).",
        "",
        "## Cold start",
        "",
        "| command | median s | × import torch, transformers |",
        "|---|---:|---:|",
    ]
    for name, r in result["cold_start"].items():
        lines.append(f"| `{name}` | {r['median_s']:.2f} | {r['ratio']:.2f} |")
    padding = result.get("padding")
    if padding:
        lines += [
            "",
            "## Limited batches on the CPU",
            "",
            f"`embed_documents` of each query's candidates ({padding['subset']}): batches cut where padding passes "
            f"{padding['limit']:.0%} of the real tokens or {padding.get('max_tokens')} padded tokens (the CPU "
            "default) against full length-sorted batches of 32 (what accelerators keep), interleaved per query in "
            "this run; medians.",
            "",
            "| backend | full batches docs/s | limited batches docs/s | speed-up | largest vector difference |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in padding["rows"].items():
            lines.append(
                f"| {name} | {r['full_docs_per_s']:.1f} | {r['limited_docs_per_s']:.1f} | {r['speedup']:.2f} "
                f"| {r['max_abs_diff']:.1e} |"
            )
    (folder / "backends.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(b["rows"])
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.27
    for k, (key, label) in enumerate(
        [
            ("reuse_speedup", "rerank with reuse"),
            ("full_speedup", "rerank without reuse"),
            ("throughput_ratio", "embed"),
        ]
    ):
        ax.bar([i + (k - 1) * width for i in range(len(names))], [b["rows"][n][key] for n in names], width, label=label)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), [f"{n}\nnDCG@10 {b['rows'][n]['ndcg10']:.3f}" for n in names])
    ax.set_ylabel("× torch (higher is faster)")
    ax.set_title(f"Packaged encoder on {m['cores']} CPU cores: backends against torch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "backends.png", dpi=120)


# ----------------------------------------------------------------------------------------------- GPU (issue #20)
def run_gpu(shapes: list[str], repeats: int, device: str, layers: int | None, folder: Path) -> dict:
    """The official architectures at full depth in bfloat16 on one accelerator: E2Rank with reuse and full,
    pointwise and RankGPT-style generation on the same backbone, N = 100 candidates of ~128 tokens."""
    import tempfile

    from e2rank_core import E2RankModel

    result: dict = {"machine": machine(), "device": device, "n": 100, "doc_tokens": DOC_TOKENS, "backbones": {},
                    "not_measured": {}}  # fmt: skip
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else result["machine"]["cpu"]
    result["device_name"] = name
    for shape in shapes:
        depth = layers or SHAPES[shape]["num_hidden_layers"]
        label = (
            f"{shape} architecture ({depth} of {SHAPES[shape]['num_hidden_layers']} layers, random weights, bfloat16)"
        )
        model = lm = None
        try:
            with tempfile.TemporaryDirectory() as tmp:
                arch = official_architecture_dir(layers, Path(tmp), shape, torch.bfloat16, device)
                # dtype=None: the checkpoint's own half precision is kept on an accelerator (the default users get)
                model = E2RankModel(str(arch), device=device, dtype=None if device != "cpu" else "bfloat16",
                                    cache_size=0)  # fmt: skip
                lm = causal_lm(str(arch), None, device, torch.bfloat16)
                docs = candidate_texts(model.backend.tokenizer, 100)
                rows = bench_backbone(label, model, lm, docs, repeats)
                auto_model = model.backend.st_model[0].auto_model
                rows["settings"] = {
                    "dtype": str(auto_model.dtype),
                    "attention": str(getattr(auto_model.config, "_attn_implementation", None)),
                }
                result["backbones"][label] = rows
        except torch.OutOfMemoryError as exc:  # the 4B shape may not fit every accelerator
            result["not_measured"][shape] = f"out of memory: {str(exc).splitlines()[0]}"
        finally:
            del model, lm
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        write_gpu_report(result, folder)  # after each shape: a run cut short keeps what it measured
    return result


def write_gpu_report(result: dict, folder: Path) -> None:
    save_json(result, folder / "gpu.json")
    device = result["device_name"]
    lines = [
        "# GPU latency: the official E2Rank architectures at full depth (issue #20)",
        "",
        f"Device: **{device}**; torch {result['machine']['torch']}. N = {result['n']} candidates of about "
        f"{result['doc_tokens']} tokens, one query, medians after a warm-up, CUDA synchronised. Command: "
        "`python benchmarks/latency.py --gpu`.",
        "",
    ]
    order = ["prompt_forward", "e2rank_reuse", "e2rank_full", "pointwise", "listwise_generation"]
    for label, rows in result["backbones"].items():
        settings = rows.get("settings", {})
        lines += [
            f"## {label}",
            "",
            f"dtype {settings.get('dtype')}, attention {settings.get('attention')}.",
            "",
            "| method | device | median ms | × e2rank_reuse | peak GPU MiB |",
            "|---|---|---:|---:|---:|",
        ]
        reuse = rows["e2rank_reuse"]["median_s"]
        for method in order:
            if method in rows:
                row = rows[method]
                lines.append(f"| {method} | {device} | {row['median_s'] * 1000:.1f} | {row['median_s'] / reuse:.1f} | "
                             f"{row.get('peak_gpu_mib', float('nan')):.0f} |")  # fmt: skip
        lines += ["", f"- E2Rank with reuse: {reuse * 1000:.1f} ms on {device} (target < 30 ms for E2Rank-0.6B)"]
        if "listwise_generation" in rows:
            ratio = rows["listwise_generation"]["median_s"] / reuse
            lines.append(f"- listwise generation / E2Rank with reuse: {ratio:.1f}x on {device} (target >= 20x)")
        lines.append("")
    for shape, why in result["not_measured"].items():
        lines += [f"## {shape}: not measured", "", why, ""]
    (folder / "gpu.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help="layers of the E2Rank-0.6B architecture (default: 28 on a GPU, 4 on a CPU)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small smoke run (fewer repeats, no curves)")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--skip-smollm", action="store_true")
    parser.add_argument("--backends", action="store_true", help="only the CPU backends and cold start (#20)")
    parser.add_argument(
        "--cold-start-only",
        action="store_true",
        help="only the cold start of the README's main command (with and without the light loader, and with "
        "--backend onnx from a cached export), --repeats runs",
    )
    parser.add_argument("--queries", type=int, default=10, help="--backends: TREC DL 2019 queries")
    parser.add_argument("--depth", type=int, default=100, help="--backends: BM25 candidates per query")
    parser.add_argument("--gpu", action="store_true", help="only the official architectures at full depth on a GPU")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES), help="--gpu: shapes")
    parser.add_argument("--device", default="cuda", help="--gpu: the accelerator (cpu with --layers 1: a smoke run)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.gpu:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            sys.exit("--gpu needs a CUDA device (none here): the GPU rows stay 'not measured'")
        run_gpu(args.shapes, 2 if args.quick else args.repeats, args.device, args.layers, Path(args.output))
        print((Path(args.output) / "gpu.md").read_text())
        return
    if args.cold_start_only:
        result = {"machine": machine(), "runs": args.repeats, "load_average_start": round(os.getloadavg()[0], 2)}
        result["cold_start"] = cold_start(runs=args.repeats, onnx=True, before=True)
        result["load_average_end"] = round(os.getloadavg()[0], 2)
        write_cold_start_report(result, Path(args.output))
        print((Path(args.output) / "cold_start.md").read_text())
        return
    if args.backends:
        result = {"machine": machine(), "backends": bench_backends(args.queries, args.depth, full_queries=3)}
        result["padding"] = bench_padding(args.queries, args.depth)
        result["cold_start"] = cold_start(runs=3)
        write_backends_report(result, Path(args.output))
        print((Path(args.output) / "backends.md").read_text())
        return
    import tempfile

    from e2rank_core import E2RankModel
    from e2rank_core.resolve import resolve_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    layers = args.layers or (28 if device == "cuda" else 4)
    repeats = 2 if args.quick else args.repeats
    result: dict = {"machine": machine(), "n": 100, "doc_tokens": DOC_TOKENS, "backbones": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = official_architecture_dir(layers, Path(tmp))
        label = f"E2Rank-0.6B architecture ({layers} of 28 layers, random weights)"
        model = E2RankModel(str(folder), device=device, dtype="float32", cache_size=0)
        docs = candidate_texts(model.backend.tokenizer, 100)
        result["backbones"][label] = bench_backbone(label, model, causal_lm(str(folder), None), docs, repeats)
        if not args.quick:
            result["curves"] = curves(model, model.backend.tokenizer, repeats)
        del model
    if not args.skip_smollm:
        model = E2RankModel("HuggingFaceTB/SmolLM2-135M-Instruct", device=device, dtype="float32", cache_size=0)
        resolved = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
        docs = candidate_texts(model.backend.tokenizer, 100)
        lm = causal_lm(resolved.path, resolved.gguf_file)
        result["backbones"]["SmolLM2-135M-Instruct (packaged)"] = bench_backbone("SmolLM2", model, lm, docs, repeats)
        del model, lm
    model = E2RankModel("sentence-transformers/all-MiniLM-L6-v2", device=device, cache_size=0)
    docs = candidate_texts(model.backend.tokenizer, 100)
    result["backbones"]["all-MiniLM-L6-v2 (packaged)"] = bench_backbone("MiniLM", model, None, docs, repeats)
    result["encode_throughput"] = encode_throughput(repeats)
    write_report(result, Path(args.output))
    print((Path(args.output) / "latency.md").read_text())


if __name__ == "__main__":
    main()
