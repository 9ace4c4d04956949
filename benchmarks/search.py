"""End-to-end search on full corpora: dense retrieval, BM25, and each + E2Rank rerank with the stored vectors.

Run: ``python benchmarks/search.py`` (the bundled ``e2rank/minilm-l6-e2rank`` on CISI, Cranfield and SciFact;
about 25 minutes on 2 busy CPU cores, most of it embedding the 5,183 SciFact abstracts). ``--max-queries N`` keeps
the first N judged queries of each collection by id (string order; the corpus is always indexed in full).

For each collection: the whole ``corpus.jsonl`` is indexed with ``e2rank_core.search.index`` into an embedded Qdrant
store in a temporary folder (index time = embedding + upserts), then every judged test query is run four ways, all
cut to 100 candidates and scored with ir-measures (nDCG@10, R@100):

- dense: the query embedding's top 100 from Qdrant (cosine);
- dense + E2Rank: those 100 reranked with the listwise prompt, reusing the vectors Qdrant returned;
- BM25: bm25s top 100 (``e2rank_core.evaluation.bm25_run``);
- BM25 + E2Rank: those 100 reranked, their vectors read back from the store (no document is re-encoded).

R@100 is a property of the 100 candidates, so a rerank leaves it unchanged. Latency: median wall time of one
``search()`` call (query embedding, Qdrant, rerank) over ``--latency-queries`` queries, with and without rerank, after
one warm-up call. Writes ``benchmarks/results/search.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DATA, RESULTS, require_collections

COLLECTIONS = ["cisi", "cranfield", "scifact"]  # smallest first: the report is rewritten after each collection
METHODS = ["dense", "dense + E2Rank", "BM25 (bm25s)", "BM25 + E2Rank"]


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no GPU"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({model}), {gpu}; load average {os.getloadavg()[0]:.1f} at the start"


def run_collection(model, name: str, store_root: Path, max_queries: int | None, latency_queries: int) -> dict:
    import ir_measures

    from e2rank_core.evaluation import bm25_run, load_beir
    from e2rank_core.search import index, open_store, rerank_stored, search

    collection = load_beir(DATA / name, "test")
    query_ids = sorted(collection.queries)[:max_queries] if max_queries else sorted(collection.queries)
    texts = [collection.queries[q] for q in query_ids]
    with open_store(path=store_root / name) as store:
        report = index(store, name, DATA / name, model=model, show_progress=True)
        print(f"  {name}: indexed {report.points} documents in {report.seconds:.1f} s", flush=True)

        start = time.perf_counter()
        vectors = model.embed_queries(texts)
        dense = store.query(name, vectors, 100)
        reranked_dense = rerank_stored(model, texts, dense)
        bm25 = bm25_run(collection, depth=100)
        bm25_points = [store.fetch(name, bm25[q]) for q in query_ids]
        reranked_bm25 = rerank_stored(model, texts, bm25_points)
        print(f"  {name}: {len(query_ids)} queries, four runs in {time.perf_counter() - start:.1f} s", flush=True)

        runs = {
            "dense": [[(p.document.id, float(p.score)) for p in points] for points in dense],
            "dense + E2Rank": [[(h.id, h.score) for h in hits] for hits in reranked_dense],
            "BM25 (bm25s)": [[(d, float(100 - i)) for i, d in enumerate(bm25[q])] for q in query_ids],
            "BM25 + E2Rank": [[(h.id, h.score) for h in hits] for hits in reranked_bm25],
        }
        qrels = [ir_measures.Qrel(q, d, g) for q in query_ids for d, g in collection.qrels.get(q, {}).items()]
        measures = [ir_measures.nDCG @ 10, ir_measures.R @ 100]
        quality: dict[str, dict[str, float]] = {}
        for method, ranking in runs.items():
            scored = [
                ir_measures.ScoredDoc(q, d, s) for q, docs in zip(query_ids, ranking, strict=True) for d, s in docs
            ]
            values = ir_measures.calc_aggregate(measures, qrels, scored)
            quality[method] = {str(m): float(values[m]) for m in measures}

        sample = texts[:latency_queries]
        latency: dict[str, float] = {}
        for label, rerank in (("search, no rerank", False), ("search + E2Rank rerank", True)):
            search(store, name, sample[0] + " warm-up", model=model, rerank=rerank)
            times = []
            for query in sample:
                begin = time.perf_counter()
                search(store, name, query, model=model, top_k=10, candidates=100, rerank=rerank)
                times.append(time.perf_counter() - begin)
            latency[label] = statistics.median(times)
    return {
        "documents": report.points,
        "queries": len(query_ids),
        "index_seconds": report.seconds,
        "quality": quality,
        "latency_seconds": latency,
    }


def write_report(results: dict, args: argparse.Namespace, folder: Path, host: str) -> list[str]:
    names = list(results)
    lines = [
        "# End-to-end search: dense / BM25 first stage, with and without the E2Rank rerank (full corpora)",
        "",
        f"Command: `python benchmarks/search.py{' --max-queries ' + str(args.max_queries) if args.max_queries else ''}`"
        f" (model `{args.model}`). Machine: {host}, shared with other jobs while it ran. Embedded Qdrant "
        "(qdrant-client local mode). Top 100 candidates per query; the reranks reuse the vectors stored at "
        "indexing time.",
        "",
        "| method | " + " | ".join(f"{n} nDCG@10 | {n} R@100" for n in names) + " | avg nDCG@10 |",
        "|---|" + "---:|---:|" * len(names) + "---:|",
    ]
    for method in METHODS:
        cells = []
        for n in names:
            q = results[n]["quality"][method]
            cells += [f"{q['nDCG@10'] * 100:.2f}", f"{q['R@100'] * 100:.2f}"]
        mean = statistics.mean(results[n]["quality"][method]["nDCG@10"] * 100 for n in names)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {mean:.2f} |")
    lines += [
        "",
        "| collection | documents | queries | index time | search, no rerank (median) | search + E2Rank (median) "
        "| ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        r = results[n]
        plain, full = r["latency_seconds"]["search, no rerank"], r["latency_seconds"]["search + E2Rank rerank"]
        lines.append(
            f"| {n} | {r['documents']:,} | {r['queries']} | {r['index_seconds']:.0f} s "
            f"({r['documents'] / r['index_seconds']:.1f} docs/s) | {plain * 1000:.0f} ms | {full * 1000:.0f} ms "
            f"| {full / plain:.1f}× |"
        )
    lines += [
        "",
        f"Latency: one `search()` call (query embedding, Qdrant top 100 with vectors, rerank), median over "
        f"{args.latency_queries} queries after a warm-up; ratios are from the same run. R@100 is that of the "
        "100 candidates, so a rerank does not change it.",
    ]
    (folder / "search.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(results)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(METHODS)
    for i, method in enumerate(METHODS):
        values = [results[n]["quality"][method]["nDCG@10"] * 100 for n in names]
        axes[0].bar(np.arange(len(names)) + i * width, values, width, label=method)
    axes[0].set_xticks(np.arange(len(names)) + width * (len(METHODS) - 1) / 2, names)
    axes[0].set_ylabel("nDCG@10")
    axes[0].set_title("Quality, full corpora (top 100 reranked)")
    axes[0].legend(fontsize=7)
    labels = ["search, no rerank", "search + E2Rank rerank"]
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        values = [results[n]["latency_seconds"][label] * 1000 for n in names]
        axes[1].bar(np.arange(len(names)) + i * width, values, width, label=label)
    axes[1].set_xticks(np.arange(len(names)) + width * (len(labels) - 1) / 2, names)
    axes[1].set_ylabel("median ms per query")
    axes[1].set_title("Latency of one search() call")
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model id or path (default: the bundled default model)")
    parser.add_argument("--collections", nargs="+", default=COLLECTIONS)
    parser.add_argument("--max-queries", type=int, default=None, help="first N judged queries per collection")
    parser.add_argument("--latency-queries", type=int, default=20)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    require_collections(args.collections)
    from e2rank_core import E2RankModel, default_model

    args.model = args.model or default_model()
    model = E2RankModel(args.model, cache_size=0, show_progress_bar=False)  # no cache: index times are real
    host = machine()
    results: dict[str, dict] = {}
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="e2rank-search-bench-") as store_root:
        for name in args.collections:
            results[name] = run_collection(model, name, Path(store_root), args.max_queries, args.latency_queries)
            payload = {"model": args.model, "machine": host, "max_queries": args.max_queries, "results": results}
            (folder / "search.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
            lines = write_report(results, args, folder, host)
            plot(results, folder / "search.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
