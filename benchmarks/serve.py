"""Load on ``e2rank serve`` over loopback: dynamic batching on vs off, and reranking documents the service already
embedded (cache) vs cold ones.

Run: ``python benchmarks/serve.py`` (10 minutes on a shared, loaded 2-core CPU; ``--quick`` for a smoke run). Writes
``benchmarks/results/serve.{md,json,png}``.

The issue asks for 1,000 requests of 100 candidates at concurrency 1, 8 and 32. On 2 CPU cores a MiniLM prompt
forward pass costs ~50 ms, so that is scaled down to a fixed, bounded count per cell (``--requests``, default
16/32/64 for concurrency 1/8/32, 8 cold ones) and a time cap per cell (``--max-seconds``, 90 s; no new request
after it). Every request is a Cohere v2 rerank of 100 candidates (TREC DL 2019 passages and queries when
../shared/data is present, otherwise generated text), each request with its own query and window of candidates.

* **cached**: the candidates were embedded through the service first (``/v2/embed``), so each rerank is one
  forward pass of the listwise prompt; measured with batching on (``--max-batch-size 32 --max-wait-ms 5``) and off
  (``--no-batching``): two server processes, up at the same time, the cells alternating on/off/on/off (each half
  of the requests) so that load changes on a shared machine hit both alike.
* **cold**: 100 never-seen candidates per request (100 document encodes + the prompt), batching on.

Both servers and this client run on the same machine; the server uses one torch thread per process
(``OMP_NUM_THREADS``, ``--threads``). A failed request (any non-200) is counted and reported; the run must have none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("E2RANK_DATA_DIR", ROOT.parent / "shared" / "data"))
CANDIDATES = 100


def load_texts(n_docs: int, n_queries: int) -> tuple[list[str], list[str], str]:
    """Passages and queries from TREC DL 2019 when present, else generated sentences of similar length."""
    folder = DATA / "trec-dl-2019"
    if (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file():
        docs, queries = [], []
        with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
            for line in handle:
                text = json.loads(line)["text"].strip()
                if text:
                    docs.append(" ".join(text.split()[:80]))
                if len(docs) == n_docs:
                    break
        with open(folder / "queries.jsonl", encoding="utf-8") as handle:
            queries = [json.loads(line)["text"] for line in handle][:n_queries]
        if len(docs) == n_docs and queries:
            return docs, (queries * (n_queries // len(queries) + 1))[:n_queries], "TREC DL 2019 passages (<= 80 words)"
    words = ["river", "city", "market", "harbour", "station", "library", "museum", "bridge", "festival", "garden"]
    docs = [" ".join(f"{words[(i * 7 + j) % len(words)]}{(i + j) % 13}" for j in range(60)) for i in range(n_docs)]
    queries = [f"where is the {words[i % len(words)]} number {i}" for i in range(n_queries)]
    return docs, queries, "generated text (60 words)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def run_cell(url: str, bodies: list[dict], concurrency: int, max_seconds: float, timeout: float = 300.0) -> dict:
    """Send ``bodies`` with at most ``concurrency`` in flight; no new request after ``max_seconds``."""
    latencies: list[float] = []
    failures = 0
    skipped = 0
    gate = asyncio.Semaphore(concurrency)
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(body: dict) -> None:
            nonlocal failures, skipped
            async with gate:
                if time.perf_counter() - start > max_seconds:
                    skipped += 1
                    return
                t0 = time.perf_counter()
                try:
                    response = await client.post(url + "/v2/rerank", json=body)
                    ok = response.status_code == 200 and len(response.json()["results"]) == len(body["documents"])
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                failures += 0 if ok else 1

        await asyncio.gather(*(one(body) for body in bodies))
    return {"latencies": latencies, "wall_s": time.perf_counter() - start, "skipped": skipped, "failures": failures}


def summarize(concurrency: int, parts: list[dict]) -> dict:
    """One table row from the rounds of a cell: requests over summed wall time, percentiles over all requests."""
    latencies = [x for part in parts for x in part["latencies"]]
    wall = sum(part["wall_s"] for part in parts)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "skipped_after_time_cap": sum(part["skipped"] for part in parts),
        "failures": sum(part["failures"] for part in parts),
        "wall_s": wall,
        "throughput_rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 99),
    }


def embed_through_service(url: str, texts: list[str]) -> None:
    with httpx.Client(timeout=600) as client:
        for start in range(0, len(texts), 96):
            body = {"texts": texts[start : start + 96], "input_type": "search_document", "embedding_types": ["float"]}
            client.post(url + "/v2/embed", json=body).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, nargs=3, default=[16, 32, 64], help="requests at concurrency 1 8 32")
    parser.add_argument("--cold-requests", type=int, default=8, help="cold requests (concurrency 8)")
    parser.add_argument("--max-seconds", type=float, default=90.0, help="time cap per cell")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server process")
    parser.add_argument("--quick", action="store_true", help="smoke run: a few requests per cell")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.cold_requests, args.max_seconds = [4, 8, 8], 4, 20.0

    from server_fixture import ServerProcess

    concurrencies = [1, 8, 32]
    n_warm = max(args.requests)
    warm_pool_size = 300
    docs, queries, source = load_texts(warm_pool_size + CANDIDATES * args.cold_requests, n_warm + args.cold_requests)
    warm, cold = docs[:warm_pool_size], docs[warm_pool_size:]

    def warm_body(i: int) -> dict:
        offset = (i * 37) % (warm_pool_size - CANDIDATES)
        return {"model": "e2rank", "query": queries[i], "documents": warm[offset : offset + CANDIDATES]}

    cold_bodies = [
        {"model": "e2rank", "query": queries[n_warm + i], "documents": cold[i * CANDIDATES : (i + 1) * CANDIDATES]}
        for i in range(args.cold_requests)
    ]
    rows: list[dict] = []
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    common = ["--max-batch-size", "32", "--max-wait-ms", "5"]
    with contextlib.ExitStack() as stack:
        # Both servers are up at once and the cells alternate (on, off, on, off), so that a change in the
        # machine's load during the run hits both sides alike.
        servers = {
            batching: stack.enter_context(ServerProcess([*flags, *common], threads=args.threads))
            for batching, flags in ((True, []), (False, ["--no-batching"]))
        }
        for server in servers.values():
            embed_through_service(server.url, warm)
            asyncio.run(run_cell(server.url, [warm_body(i) for i in range(2)], 1, 60))  # warm-up
        for concurrency, n in zip(concurrencies, args.requests, strict=True):
            bodies = [warm_body(i) for i in range(n)]
            halves = [bodies[: n // 2], bodies[n // 2 :]]
            parts: dict[bool, list[dict]] = {True: [], False: []}
            for half in halves:
                for batching, server in servers.items():
                    parts[batching].append(asyncio.run(run_cell(server.url, half, concurrency, args.max_seconds / 2)))
            for batching in (True, False):
                rows.append({"documents": "cached", "batching": batching, **summarize(concurrency, parts[batching])})
                print(json.dumps(rows[-1]), flush=True)
        cell = asyncio.run(run_cell(servers[True].url, cold_bodies, 8, args.max_seconds))
        rows.append({"documents": "cold", "batching": True, **summarize(8, [cell])})
        print(json.dumps(rows[-1]), flush=True)
    total = time.perf_counter() - started
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU"
    report = {
        "machine": machine,
        "server_torch_threads": args.threads,
        "documents": source,
        "candidates_per_request": CANDIDATES,
        "total_seconds": total,
        "load_average": f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (1-minute)",
        "rows": rows,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "serve.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.output / "serve.md").write_text(markdown(report), encoding="utf-8")
    plot(rows, args.output / "serve.png")
    print(markdown(report))


def find(rows: list[dict], documents: str, batching: bool, concurrency: int) -> dict | None:
    for row in rows:
        if (row["documents"], row["batching"], row["concurrency"]) == (documents, batching, concurrency):
            return row
    return None


def batching_summary(ratios: list[float]) -> str:
    """What this run's batching on/off throughput ratios say (the text follows the numbers, not the reverse)."""
    if not ratios:
        return ""
    span = f"on/off {min(ratios):.2f}-{max(ratios):.2f}x"
    below, above = sum(r < 0.9 for r in ratios), sum(r > 1.1 for r in ratios)
    if not below and not above:
        verdict = f"batching on and off gave the same throughput within 10% ({span})"
    elif below and not above:
        verdict = f"batching cost throughput in {below} of {len(ratios)} cells ({span}; the others within 10%)"
    elif above and not below:
        verdict = f"batching raised throughput in {above} of {len(ratios)} cells ({span}; the others within 10%)"
    else:
        verdict = f"batching raised throughput in {above} cells and cost it in {below} ({span})"
    return (
        "On a CPU the prompt's forward pass is compute-bound: gathering requests into one batch does not make a "
        f"prompt cheaper, and in this run {verdict}; a gathered batch finishes together, so p50 rises with "
        "concurrency. Batching is meant for accelerators, where a batch of prompts costs little more than one (not "
        "measured here). What pays on this CPU is the cache: reranking documents the service already embedded costs "
        "the prompt's forward pass only."
    )


def markdown(report: dict) -> str:
    rows = report["rows"]
    lines = [
        "# `e2rank serve` under load (loopback)",
        "",
        f"`python benchmarks/serve.py`; {report['machine']}; server: the bundled `e2rank/minilm-l6-e2rank`, "
        f"{report['server_torch_threads']} torch thread, client on the same machine. Each request: Cohere v2 rerank "
        f"of {report['candidates_per_request']} candidates ({report['documents']}), its own query. *cached*: the "
        "candidates were embedded through the service first (`/v2/embed`); *cold*: never seen. "
        f"Whole run: {report['total_seconds']:.0f} s. Machine load average (other processes included): "
        f"{report.get('load_average', 'not recorded')}.",
        "",
        "| documents | batching | concurrency | requests | failed | throughput (req/s) | p50 (ms) | p99 (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['documents']} | {'on' if row['batching'] else 'off'} | {row['concurrency']} | {row['requests']} | "
            f"{row['failures']} | {row['throughput_rps']:.2f} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} |"
        )
    lines += ["", "Ratios (same run):", ""]
    batching_ratios = []
    for concurrency in (1, 8, 32):
        on, off = find(rows, "cached", True, concurrency), find(rows, "cached", False, concurrency)
        if on and off:
            speedup = on["throughput_rps"] / off["throughput_rps"]
            batching_ratios.append(speedup)
            lines.append(
                f"- concurrency {concurrency}: batching on/off throughput {speedup:.2f}x, "
                f"p50 {on['p50_ms'] / off['p50_ms']:.2f}x"
            )
    cached, cold = find(rows, "cached", True, 8), find(rows, "cold", True, 8)
    if cached and cold:
        speedup = cached["throughput_rps"] / cold["throughput_rps"]
        lines.append(
            f"- concurrency 8, batching on: cached vs cold throughput {speedup:.1f}x, "
            f"p50 {cold['p50_ms'] / cached['p50_ms']:.1f}x lower"
        )
    failed = sum(row["failures"] for row in rows)
    skipped = sum(row["skipped_after_time_cap"] for row in rows)
    lines += [
        "",
        f"Failed requests: {failed}. Requests not sent because a cell hit its time cap: {skipped}.",
        "",
        batching_summary(batching_ratios),
        "",
    ]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for batching, style in ((True, "o-"), (False, "s--")):
        cells = [r for r in rows if r["documents"] == "cached" and r["batching"] == batching]
        label = f"cached, batching {'on' if batching else 'off'}"
        left.plot([r["concurrency"] for r in cells], [r["throughput_rps"] for r in cells], style, label=label)
        right.plot([r["concurrency"] for r in cells], [r["p50_ms"] for r in cells], style, label=label)
    for r in rows:
        if r["documents"] == "cold":
            left.plot([r["concurrency"]], [r["throughput_rps"]], "r^", label="cold, batching on")
            right.plot([r["concurrency"]], [r["p50_ms"]], "r^", label="cold, batching on")
    for axis, ylabel in ((left, "throughput (requests/s)"), (right, "p50 latency (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks([1, 8, 32], ["1", "8", "32"])
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    right.set_yscale("log")
    fig.suptitle("e2rank serve: 100-candidate reranks over loopback (2-core CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
