"""Ranking quality (nDCG@10) of first stage, same-model cosine rerank and E2Rank listwise rerank.

Run: ``python benchmarks/quality.py`` (all-MiniLM-L6-v2 and the bundled trained ``e2rank/minilm-l6-e2rank`` on the
four shared collections, about 20 minutes on 2 CPU cores); ``--models`` names others (e.g.
``HuggingFaceTB/SmolLM2-135M-Instruct`` or a trained folder).
Writes ``benchmarks/results/quality.{md,json,png}``. Every number comes from ``e2rank_core.evaluation.evaluate``
(ir-measures), reranking the top 100 of each collection's first stage (the shipped BM25 run of TREC DL 2019, bm25s
elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("E2RANK_DATA_DIR", ROOT.parent / "shared" / "data"))
COLLECTIONS = ["trec-dl-2019", "scifact", "cranfield", "cisi"]


def require_collections(collections: list[str]) -> None:
    """Exit with a clear message when a shared IR collection is missing."""
    missing = [c for c in collections if not (DATA / c / "corpus.jsonl").is_file()]
    if missing:
        sys.exit(f"shared IR data not found for {missing} under {DATA} (set E2RANK_DATA_DIR)")


def rows_for_model(name: str, collections: list[str], depth: int) -> dict[str, dict[str, float]]:
    from e2rank_core import E2RankModel
    from e2rank_core.evaluation import evaluate

    model = E2RankModel(name, cache_size=20_000, show_progress_bar=False)
    short = Path(name).name if Path(name).exists() else name.split("/")[-1]
    rows: dict[str, dict[str, float]] = {
        f"{short}: cosine rerank (plain query)": {},
        f"{short}: cosine rerank (Instruct query)": {},
        f"{short}: E2Rank listwise rerank": {},
    }
    for collection in collections:
        folder = DATA / collection
        model.plain_queries = True
        rows[f"{short}: cosine rerank (plain query)"][collection] = evaluate(
            model, folder, mode="embedding", depth=depth, show_progress_bar=False
        ).measures["nDCG@10"]
        model.plain_queries = False
        rows[f"{short}: cosine rerank (Instruct query)"][collection] = evaluate(
            model, folder, mode="embedding", depth=depth, show_progress_bar=False
        ).measures["nDCG@10"]
        rows[f"{short}: E2Rank listwise rerank"][collection] = evaluate(
            model, folder, mode="listwise", depth=depth, show_progress_bar=False
        ).measures["nDCG@10"]
        print(f"  {short} {collection}: " + ", ".join(f"{v[collection] * 100:.2f}" for v in rows.values()), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from e2rank_core.resolve import FALLBACK_DEFAULT_MODEL, default_model

    default_models = list(dict.fromkeys([FALLBACK_DEFAULT_MODEL, default_model()]))  # base, then the bundled model
    parser.add_argument("--models", nargs="+", default=default_models)
    parser.add_argument("--collections", nargs="+", default=COLLECTIONS)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    require_collections(args.collections)
    from e2rank_core.evaluation import evaluate

    table: dict[str, dict[str, float]] = {"BM25 first stage": {}}
    for collection in args.collections:
        table["BM25 first stage"][collection] = evaluate(
            None, DATA / collection, mode="first-stage", depth=args.depth
        ).measures["nDCG@10"]
    for name in args.models:
        table.update(rows_for_model(name, args.collections, args.depth))

    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quality.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    header = "| method | " + " | ".join(args.collections) + " | avg |"
    lines = [
        "# Quality: nDCG@10, reranking the first stage's top 100",
        "",
        f"Command: `python benchmarks/quality.py --models {' '.join(args.models)}`",
        "",
        header,
        "|---|" + "---:|" * (len(args.collections) + 1),
    ]
    for method, values in table.items():
        cells = [values[c] * 100 for c in args.collections]
        lines.append(f"| {method} | " + " | ".join(f"{v:.2f}" for v in cells) + f" | {sum(cells) / len(cells):.2f} |")
    (folder / "quality.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(table, args.collections, folder / "quality.png")
    print("\n".join(lines))


def plot(table: dict[str, dict[str, float]], collections: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axis = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(table)
    for i, (method, values) in enumerate(table.items()):
        axis.bar(np.arange(len(collections)) + i * width, [values[c] * 100 for c in collections], width, label=method)
    axis.set_xticks(np.arange(len(collections)) + width * (len(table) - 1) / 2, collections)
    axis.set_ylabel("nDCG@10")
    axis.set_title("Reranking the first stage's top 100")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
