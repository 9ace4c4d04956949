"""Listwise rerank quality (nDCG@10) against K, the number of candidates written into the listwise prompt.

Run: ``python benchmarks/prompt_size.py`` (the base all-MiniLM-L6-v2 zero-shot and the bundled trained
``e2rank/minilm-l6-e2rank``, K = 1, 3, 5, 10, 20, on the four shared collections; about 14 minutes on 2 CPU cores).
Writes ``benchmarks/results/prompt_size.{md,json,png}``. All 100 first-stage candidates are scored every time; K
only changes how many of the top ones enrich the query (the paper uses K = 20). Document vectors are computed once
per model and reused across K, as a deployment that keeps retrieval embeddings would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from quality import COLLECTIONS, DATA, RESULTS, require_collections  # same data location and collections


def sweep(name: str, sizes: list[int], collections: list[str]) -> dict[int, dict[str, float]]:
    """nDCG@10 of the listwise rerank for each prompt size K, per collection."""
    from e2rank_core import E2RankModel
    from e2rank_core.evaluation import evaluate

    model = E2RankModel(name, cache_size=30_000, show_progress_bar=False)
    scores: dict[int, dict[str, float]] = {k: {} for k in sizes}
    for collection in collections:
        for k in sizes:
            result = evaluate(model, DATA / collection, mode="listwise", num_input_docs=k, show_progress_bar=False)
            scores[k][collection] = result.measures["nDCG@10"]
            print(f"  {name} {collection} K={k}: {100 * scores[k][collection]:.2f}", flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["sentence-transformers/all-MiniLM-L6-v2", "e2rank/minilm-l6-e2rank"]
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 3, 5, 10, 20])
    parser.add_argument("--collections", nargs="+", default=COLLECTIONS)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if any(k < 1 for k in args.sizes):
        sys.exit("--sizes must be positive")
    require_collections(args.collections)

    table = {name: sweep(name, args.sizes, args.collections) for name in args.models}
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompt_size.json").write_text(
        json.dumps({name: {str(k): v for k, v in rows.items()} for name, rows in table.items()}, indent=2) + "\n",
        encoding="utf-8",
    )
    lines = [
        "# Listwise rerank nDCG@10 against K, the candidates in the prompt (top 100 reranked)",
        "",
        f"Command: `python benchmarks/prompt_size.py --models {' '.join(args.models)} "
        f"--sizes {' '.join(map(str, args.sizes))}`",
        "",
        "| model | K | " + " | ".join(args.collections) + " | avg |",
        "|---|---:|" + "---:|" * (len(args.collections) + 1),
    ]
    for name, rows in table.items():
        for k, values in rows.items():
            cells = [100 * values[c] for c in args.collections]
            lines.append(
                f"| {name} | {k} | " + " | ".join(f"{v:.2f}" for v in cells) + f" | {sum(cells) / len(cells):.2f} |"
            )
    (folder / "prompt_size.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(table, args.collections, folder / "prompt_size.png")
    print("\n".join(lines))


def plot(table: dict[str, dict[int, dict[str, float]]], collections: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(collections), figsize=(3.2 * len(collections), 3.4), squeeze=False)
    for axis, collection in zip(axes[0], collections, strict=True):
        for name, rows in table.items():
            sizes = list(rows)
            axis.plot(sizes, [100 * rows[k][collection] for k in sizes], marker="o", label=name.split("/")[-1])
            axis.set_xscale("log")
            axis.set_xticks(sizes, [str(k) for k in sizes])
        axis.set_title(collection)
        axis.set_xlabel("K (docs in prompt)")
    axes[0][0].set_ylabel("nDCG@10")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
