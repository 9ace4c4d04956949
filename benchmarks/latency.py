"""Per-query cost of reranking N candidates: E2Rank against pointwise and listwise-generation rerankers.

Run: ``python benchmarks/latency.py`` (CPU: about 10 minutes; ``--quick`` for a smoke run). Writes
``benchmarks/results/latency.{md,json,png}``. ``--backends`` (about 8 minutes) instead measures the packaged encoder
on each CPU backend (torch, ONNX, OpenVINO and their int8 variants: rerank with and without reuse, embedding
throughput, nDCG@10 on a TREC DL 2019 subset) and the cold start of ``e2rank rerank``, into
``benchmarks/results/backends.{md,json,png}``.

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
    if warm_up:
        fn()
    times = []
    with PeakMemory() as memory:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats, "peak_mib": memory.mib}


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


def official_architecture_dir(layers: int, folder: Path) -> Path:
    """E2Rank-0.6B's Qwen3 configuration with ``layers`` layers and random weights, ChatML tokenizer, on disk."""
    from conftest import QWEN3_CHAT_TEMPLATE, smollm_gguf_path
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    gguf = smollm_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    tokenizer.pad_token = "<|endoftext|>"
    config = Qwen3Config(
        vocab_size=151669,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=layers,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=32768,
        rope_theta=1_000_000,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def causal_lm(model_dir: str, gguf_file: str | None):
    from transformers import AutoModelForCausalLM

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kwargs).eval()


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
        backend.st_model(dict(features))

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
                lm.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=GENERATED_TOKENS,
                    min_new_tokens=GENERATED_TOKENS,
                    do_sample=False,
                    pad_token_id=backend.pad_id,
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
    cpu = "unknown"
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
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
BACKEND_NAMES = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
MAIN_COMMAND = ["rerank", "--query", "What is the capital of France?", "examples/data/capitals.txt"]


def cold_start(runs: int) -> dict[str, dict[str, float]]:
    """Wall time of fresh processes: the README's main command (torch, onnx) against importing torch + transformers."""
    import subprocess

    e2rank = str(Path(sys.executable).with_name("e2rank"))
    commands = {
        "python -c 'import torch, transformers'": [sys.executable, "-c", "import torch, transformers"],
        "e2rank rerank (README main command)": [e2rank, *MAIN_COMMAND],
        "e2rank rerank --backend onnx (export cached)": [e2rank, *MAIN_COMMAND, "--backend", "onnx"],
    }
    subprocess.run(commands["e2rank rerank --backend onnx (export cached)"], cwd=ROOT, capture_output=True, check=True)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so that a busy moment on the machine hits every command alike
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c 'import torch, transformers'"])
    return {n: {"median_s": statistics.median(t), "ratio": statistics.median(t) / base} for n, t in times.items()}


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
    rows: dict[str, dict[str, float]] = {}
    for backend in BACKEND_NAMES:
        start = time.perf_counter()
        model = E2RankModel("e2rank/minilm-l6-e2rank", backend=backend, cache_size=0)
        load_s = time.perf_counter() - start
        model.embed_documents(["warm-up"])
        embed, reuse, ranking = [], [], {}
        for qid in qids:
            docs = [collection.corpus[d] for d in run[qid]]
            start = time.perf_counter()
            vectors = model.embed_documents(docs, show_progress_bar=False)
            embed.append(time.perf_counter() - start)
            start = time.perf_counter()
            hits = model.rerank(collection.queries[qid], docs, document_embeddings=vectors)
            reuse.append(time.perf_counter() - start)
            ranking[qid] = {run[qid][h.index]: h.score for h in hits}
        full = []
        for qid in qids[:full_queries]:
            docs = [collection.corpus[d] for d in run[qid]]
            start = time.perf_counter()
            model.rerank(collection.queries[qid], docs)
            full.append(time.perf_counter() - start)
        qrels = {q: collection.qrels[q] for q in qids}
        rows[backend] = {
            "load_s": load_s,
            "reuse_ms": 1000 * statistics.median(reuse),
            "full_ms": 1000 * statistics.median(full),
            "docs_per_s": depth / statistics.median(embed),
            "ndcg10": ir_measures.calc_aggregate([nDCG @ 10], qrels, ranking)[nDCG @ 10],
        }
        del model
    bm25 = {q: {d: float(depth - i) for i, d in enumerate(run[q])} for q in qids}
    for row in rows.values():
        row["reuse_speedup"] = rows["torch"]["reuse_ms"] / row["reuse_ms"]
        row["full_speedup"] = rows["torch"]["full_ms"] / row["full_ms"]
        row["throughput_ratio"] = row["docs_per_s"] / rows["torch"]["docs_per_s"]
    return {
        "subset": f"TREC DL 2019, first {len(qids)} judged queries, BM25 top-{depth}",
        "full_queries": full_queries,
        "bm25_ndcg10": ir_measures.calc_aggregate([nDCG @ 10], {q: collection.qrels[q] for q in qids}, bm25)[nDCG @ 10],
        "rows": rows,
    }


def write_backends_report(result: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "backends.json").write_text(json.dumps(result, indent=2))
    m = result["machine"]
    b = result["backends"]
    lines = [
        "# CPU backends of the packaged encoder (issue #20)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (1-minute load average at the start: "
        f"{m.get('load_average_1min', 'not recorded')}), torch {m['torch']}, "
        f"GPU: {m['gpu'] or 'none'}. Command: `python benchmarks/latency.py --backends`. Model: "
        "`e2rank/minilm-l6-e2rank`, batch 32, float32 unless int8. Set: "
        f"{b['subset']} (nDCG@10 of the BM25 order: {b['bm25_ndcg10']:.4f}). Timings are medians over the queries "
        f"(rerank without reuse: first {b['full_queries']} queries); ratios are against torch in the same run.",
        "",
        "| backend | rerank with reuse ms | × torch | rerank without reuse ms | × torch | embed_documents docs/s "
        "| × torch | nDCG@10 | load s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in b["rows"].items():
        lines.append(
            f"| {name} | {r['reuse_ms']:.1f} | {r['reuse_speedup']:.2f} | {r['full_ms']:.0f} | {r['full_speedup']:.2f} "
            f"| {r['docs_per_s']:.1f} | {r['throughput_ratio']:.2f} | {r['ndcg10']:.4f} | {r['load_s']:.1f} |"
        )
    lines += [
        "",
        "× torch: how many times faster than torch (above 1 is faster). GPU rows (half precision, fused attention, "
        "the full-depth E2Rank-0.6B architecture): not measured (no GPU lent in this session).",
        "",
        "## Cold start",
        "",
        "| command | median s | × import torch, transformers |",
        "|---|---:|---:|",
    ]
    for name, r in result["cold_start"].items():
        lines.append(f"| `{name}` | {r['median_s']:.2f} | {r['ratio']:.2f} |")
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
    parser.add_argument("--queries", type=int, default=10, help="--backends: TREC DL 2019 queries")
    parser.add_argument("--depth", type=int, default=100, help="--backends: BM25 candidates per query")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.backends:
        result = {"machine": machine(), "backends": bench_backends(args.queries, args.depth, full_queries=3)}
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
