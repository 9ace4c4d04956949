"""Selection protocol for the default rerank (issue #19): choose on a dev split, then score the test sets once.

Run (from the repository root, 2 CPU cores; ``--stage dev`` about 40 minutes, ``--stage test`` about 20)::

    export HF_HUB_OFFLINE=1
    python benchmarks/selection.py --stage dev     # dev table for every candidate, the choice
    python benchmarks/selection.py --stage test    # the chosen setting and the baselines on the four test sets
    python benchmarks/selection.py --stage report  # benchmarks/results/selection.{md,json}

Candidates (no training):

- weight-space interpolation ``theta = (1 - a) * base + a * trained`` between ``sentence-transformers/all-MiniLM-L6-v2``
  and the bundled ``e2rank/minilm-l6-e2rank``, ``a`` in ``ALPHAS`` (WiSE-FT);
- Rocchio-style scoring ``cos(normalize(p + w * q), d)`` (:func:`e2rank_core.rocchio.combine_query_embedding`):
  ``p`` the listwise prompt embedding, ``q`` the plain or ``Instruct:`` query embedding, ``w`` in ``WEIGHTS``;
- both. ``w = 0`` is the paper's listwise rerank.

Dev split (:func:`dev_subsets`, seed ``SEED``), from training material only:

- ``trec-dl-2021``: the 53 judged DL 2021 queries, their BM25 top-100 (web passages, like the held-out set A);
- ``scifact-train``: ``DEV_QUERIES`` seeded SciFact *train* claims, bm25s top-20 over the SciFact corpus;
- ``scifact-titles``: ``DEV_QUERIES`` seeded known-item queries: a SciFact paper's title must find its own abstract
  (abstracts only, bm25s top-20); only papers no SciFact test claim cites.

The bundled model was trained on every DL 2021 and SciFact train query (``benchmarks/train_minilm.py`` builds lists
for all of them), so the first two subsets are *seen* by the trained weights and flatter them; title-to-abstract
search is a task neither model was trained on, the one unseen subset. The top-20 depth of the SciFact subsets (the
candidates the prompt holds; held-out set B has top-20 lists) keeps the run within the CPU budget.

Selection rule (fixed before any number was seen): among the listwise candidates (``w >= 0``, every ``a``) that are
at least level with the base model's plain cosine rerank on *every* dev subset, those within ``MEAN_SLACK`` of the best
dev mean; of these, the one with the largest worst-subset gain over base cosine (robustness first, not the single
best number). :func:`check_disjoint` asserts that no dev query id or text is an evaluation query.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("E2RANK_DATA_DIR", ROOT.parent / "shared" / "data"))
BASE = "sentence-transformers/all-MiniLM-L6-v2"
TRAINED = "e2rank/minilm-l6-e2rank"
SEED = 19
DEV_QUERIES = 60
ALPHAS = (1.0, 0.0, 0.5, 0.75, 0.25)  # the two ends first: they are the baselines
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)
FORMS = ("plain", "instruct")
MEAN_SLACK = 0.5
TEST_SETS = ("trec-dl-2019", "scifact", "cranfield", "cisi")
DEV_SETS = ("trec-dl-2021", "scifact-train", "scifact-titles")
SEEN = {"trec-dl-2021": True, "scifact-train": True, "scifact-titles": False}


@dataclass
class Subset:
    """Queries, judgments, first-stage candidates (best first) and document texts of one dev or test set."""

    name: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    candidates: dict[str, list[str]]
    corpus: dict[str, str]


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed: the form in which query texts are compared."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _first_stage(name: str, corpus: dict[str, str], queries: dict[str, str], depth: int) -> dict[str, list[str]]:
    from e2rank_core.evaluation import BeirCollection, bm25_run

    return bm25_run(BeirCollection(name, corpus, queries), depth)


def dev_subsets(data: Path = DATA, n_queries: int = DEV_QUERIES, seed: int = SEED) -> list[Subset]:
    """The fixed, seeded dev split (see the module docstring); every query comes from training material."""
    from e2rank_core.evaluation import load_beir, read_run

    dl21 = load_beir(data / "trec-dl-2021", "train")
    subsets = [Subset("trec-dl-2021", dl21.queries, dl21.qrels, read_run(dl21.run_path, 100), dl21.corpus)]  # type: ignore[arg-type]

    scifact = load_beir(data / "scifact", "train")
    chosen = sorted(random.Random(seed).sample(sorted(scifact.queries), n_queries))
    queries = {q: scifact.queries[q] for q in chosen}
    qrels = {q: scifact.qrels[q] for q in chosen}
    subsets.append(Subset("scifact-train", queries, qrels, _first_stage("scifact", scifact.corpus, queries, 20),
                          scifact.corpus))  # fmt: skip

    test_cited = {d for judged in load_beir(data / "scifact", "test").qrels.values() for d in judged}
    with (data / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    abstracts = {str(r["_id"]): r["text"].strip() for r in records if r["text"].strip()}
    titled = sorted(
        str(r["_id"])
        for r in records
        if str(r["_id"]) in abstracts and str(r["_id"]) not in test_cited and len(r["title"].split()) >= 5
    )
    titles = {str(r["_id"]): r["title"].strip() for r in records}
    picked = sorted(random.Random(seed).sample(titled, n_queries))
    queries = {f"title-{d}": titles[d] for d in picked}
    qrels = {f"title-{d}": {d: 1} for d in picked}
    subsets.append(Subset("scifact-titles", queries, qrels, _first_stage("titles", abstracts, queries, 20), abstracts))
    return subsets


def test_subsets(data: Path = DATA) -> list[Subset]:
    """The four shared test sets exactly as ``e2rank eval`` / ``benchmarks/quality.py`` score them (top 100)."""
    from e2rank_core.evaluation import load_beir
    from e2rank_core.evaluation.evaluate import first_stage

    subsets = []
    for name in TEST_SETS:
        collection = load_beir(data / name, "test")
        candidates, _ = first_stage(collection, None, 100)
        subsets.append(Subset(name, collection.queries, collection.qrels, candidates, collection.corpus))
    return subsets


def evaluation_queries(data: Path = DATA) -> dict[str, dict[str, str]]:
    """Every query of the evaluation collections (all of ``queries.jsonl``; SciFact: its test claims)."""
    from e2rank_core.evaluation import load_beir

    out = {}
    for name in TEST_SETS:
        split = "test" if name == "scifact" else None
        out[name] = load_beir(data / name, split).queries
    return out


def check_disjoint(dev: list[Subset], data: Path = DATA) -> None:
    """Raise ``AssertionError`` when a dev query id or (normalised) text is an evaluation query.

    Ids are compared within a family (TREC DL ids are MS MARCO query ids, SciFact train vs. test claim ids);
    texts against every evaluation query of every test collection.
    """
    evaluation = evaluation_queries(data)
    texts = {normalise(t): name for name, queries in evaluation.items() for t in queries.values()}
    family = {"trec-dl-2021": "trec-dl-2019", "scifact-train": "scifact"}
    for subset in dev:
        for qid, text in subset.queries.items():
            other = family.get(subset.name)
            assert other is None or qid not in evaluation[other], f"{subset.name} query id {qid} is in {other}"
            assert normalise(text) not in texts, f"{subset.name} query {qid} {text!r} is in {texts[normalise(text)]}"


# ------------------------------------------------------------------------------------------ interpolation
def interpolated_model(alpha: float, work: Path) -> str:
    """A model id/folder for ``theta = (1 - alpha) * base + alpha * trained`` (float16, the bundled folder's layout).

    ``alpha`` 0 and 1 are the packaged base and the bundled model themselves.
    """
    if alpha == 0.0:
        return BASE
    if alpha == 1.0:
        return TRAINED
    folder = work / f"minilm-wise-{alpha:g}"
    if not (folder / "model.safetensors").is_file():
        write_interpolation(alpha, folder)
    return str(folder)


def write_interpolation(alpha: float, folder: Path) -> Path:
    """Write the interpolated weights into ``folder``, a copy of the bundled model's folder (float16 safetensors)."""
    from safetensors.torch import load_file, save_file

    from e2rank_core.resolve import resolve_model

    base_dir = Path(resolve_model(BASE).path)
    trained_dir = Path(resolve_model(TRAINED).path)
    base = load_file(str(base_dir / "model.safetensors"))
    trained = load_file(str(trained_dir / "model.safetensors"))
    mixed = {}
    for key, tensor in trained.items():
        start = base[key].float()
        mixed[key] = ((1.0 - alpha) * start + alpha * tensor.float()).to(tensor.dtype).contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    for item in trained_dir.iterdir():
        if item.name in ("model.safetensors", "README.md"):
            continue
        target = folder / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    save_file(mixed, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


# ------------------------------------------------------------------------------------------ embedding and scoring
def embed_subset(model_id: str, subset: Subset, cache: Path) -> dict[str, np.ndarray]:
    """Document, listwise-prompt (first 20 candidates in first-stage order), plain and Instruct query embeddings."""
    if cache.is_file():
        with np.load(cache) as stored:
            return {k: stored[k] for k in stored.files}
    from e2rank_core import E2RankModel

    model = E2RankModel(model_id, cache_size=0, show_progress_bar=False)
    qids = sorted(subset.queries)
    docs = sorted({d for q in qids for d in subset.candidates.get(q, []) if d in subset.corpus})
    start = time.perf_counter()
    arrays = {
        "doc_ids": np.array(docs),
        "query_ids": np.array(qids),
        "docs": model.embed_documents([subset.corpus[d] for d in docs]),
        "plain": model.embed_queries([subset.queries[q] for q in qids], plain=True),
        "instruct": model.embed_queries([subset.queries[q] for q in qids], plain=False),
    }
    lists = [[subset.corpus[d] for d in subset.candidates.get(q, []) if d in subset.corpus] for q in qids]
    arrays["prompt"] = model.embed_listwise_prompts([subset.queries[q] for q in qids], lists, num_input_docs=20)
    print(f"  embedded {subset.name} with {model_id}: {len(docs)} docs, {len(qids)} queries "
          f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **arrays)
    return arrays


def variants(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-query scoring vectors of every candidate scoring rule: cosine (plain / Instruct), listwise (+ w * q)."""
    from e2rank_core.rocchio import combine_query_embedding

    out = {"cosine (plain)": arrays["plain"], "cosine (Instruct)": arrays["instruct"]}
    for weight in WEIGHTS:
        for form in FORMS if weight > 0 else ("plain",):
            name = "listwise" if weight == 0 else f"listwise + {weight:g} q ({form})"
            out[name] = combine_query_embedding(arrays["prompt"], arrays[form], weight)
    return out


def ndcg10(subset: Subset, arrays: dict[str, np.ndarray], vectors: np.ndarray) -> float:
    """nDCG@10 (ir-measures) of ranking each query's candidates by dot product with its scoring vector."""
    import ir_measures

    row_of = {d: i for i, d in enumerate(arrays["doc_ids"].tolist())}
    run = []
    for position, qid in enumerate(arrays["query_ids"].tolist()):
        docs = [d for d in subset.candidates.get(qid, []) if d in row_of]
        scores = arrays["docs"][[row_of[d] for d in docs]] @ vectors[position]
        run += [ir_measures.ScoredDoc(qid, d, float(s)) for d, s in zip(docs, scores, strict=True)]
    qrels = [ir_measures.Qrel(q, d, g) for q, judged in subset.qrels.items() for d, g in judged.items()]
    return 100 * ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]


def first_stage_ndcg10(subset: Subset) -> float:
    import ir_measures

    run = [
        ir_measures.ScoredDoc(q, d, float(-rank))
        for q in subset.queries
        for rank, d in enumerate(subset.candidates.get(q, []))
    ]
    qrels = [ir_measures.Qrel(q, d, g) for q, judged in subset.qrels.items() for d, g in judged.items()]
    return 100 * ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]


def score_table(subsets: list[Subset], alphas: tuple[float, ...], work: Path, tag: str) -> dict[str, dict[str, float]]:
    """``row -> subset -> nDCG@10``; rows are ``a=<alpha>: <variant>`` plus the first stage."""
    table: dict[str, dict[str, float]] = {"first stage": {s.name: first_stage_ndcg10(s) for s in subsets}}
    for alpha in alphas:
        model_id = interpolated_model(alpha, work)
        for subset in subsets:
            arrays = embed_subset(model_id, subset, work / f"{tag}-a{alpha:g}-{subset.name}.npz")
            for name, vectors in variants(arrays).items():
                table.setdefault(f"a={alpha:g}: {name}", {})[subset.name] = ndcg10(subset, arrays, vectors)
    return table


def choose(table: dict[str, dict[str, float]], sets: tuple[str, ...] = DEV_SETS) -> dict[str, object]:
    """Apply the selection rule (module docstring) to a dev table."""
    reference = table["a=0: cosine (plain)"]
    candidates = []
    for row, values in table.items():
        if ": listwise" not in row:
            continue
        gains = [values[s] - reference[s] for s in sets]
        candidates.append((row, float(np.mean([values[s] for s in sets])), min(gains)))
    eligible = [c for c in candidates if c[2] >= 0]
    pool = eligible or candidates
    best_mean = max(c[1] for c in pool)
    near = [c for c in pool if c[1] >= best_mean - MEAN_SLACK]
    row, mean, worst = max(near, key=lambda c: (c[2], c[1]))
    return {"row": row, "dev_mean": mean, "worst_gain": worst, "eligible": len(eligible), "candidates": len(candidates)}


def parse_row(row: str) -> tuple[float, str]:
    alpha, variant = row.split(": ", 1)
    return float(alpha.removeprefix("a=")), variant


def published_baselines(path: Path = RESULTS / "quality.json") -> dict[str, dict[str, float]]:
    """The baselines' test rows from ``benchmarks/quality.py`` (the same ``evaluate`` pipeline, x 100): base
    all-MiniLM-L6-v2 plain cosine (the acceptance reference) and the bundled model's listwise rerank (the default
    before this selection). Reused rather than re-encoded: 2 shared CPU cores cannot afford the test sets three times.
    """
    quality = json.loads(path.read_text(encoding="utf-8"))
    rows = {
        "a=0: cosine (plain) [quality.json]": "all-MiniLM-L6-v2: cosine rerank (plain query)",
        "a=1: listwise [quality.json]": "minilm-l6-e2rank: E2Rank listwise rerank",
    }
    return {row: {s: 100 * quality[source][s] for s in TEST_SETS} for row, source in rows.items()}


# ------------------------------------------------------------------------------------------ report
def markdown_table(table: dict[str, dict[str, float]], sets: tuple[str, ...], bold: str | None = None) -> list[str]:
    """A markdown table, one row per configuration; a set a row was not scored on shows ``n/a`` (and no mean)."""
    lines = ["| configuration | " + " | ".join(sets) + " | mean |", "|---|" + "---:|" * (len(sets) + 1)]
    for row, values in table.items():
        cells = [f"{values[s]:.2f}" if s in values else "n/a" for s in sets]
        mean = f"{np.mean([values[s] for s in sets]):.2f}" if all(s in values for s in sets) else "n/a"
        name = f"**{row}**" if row == bold else row
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=["dev", "test", "report"], required=True)
    parser.add_argument("--work", default="/tmp/e2rank-selection", help="embeddings and interpolated models")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS), help="dev: interpolation weights")
    parser.add_argument("--sets", nargs="+", default=list(TEST_SETS), help="test: the test sets to score")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    missing = [n for n in (*TEST_SETS, "trec-dl-2021") if not (DATA / n / "corpus.jsonl").is_file()]
    if missing:
        sys.exit(f"shared IR data not found for {missing} under {DATA} (set E2RANK_DATA_DIR)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.stage == "dev":
        dev = dev_subsets()
        check_disjoint(dev)
        table = score_table(dev, tuple(args.alphas), work, "dev")
        choice = choose(table)
        (work / "dev.json").write_text(json.dumps({"table": table, "choice": choice}, indent=1), encoding="utf-8")
        print("\n".join(markdown_table(table, DEV_SETS, str(choice["row"]))))
        print(json.dumps(choice))
    elif args.stage == "test":
        choice = json.loads((work / "dev.json").read_text(encoding="utf-8"))["choice"]
        alpha, _ = parse_row(choice["row"])
        cached = {t: (work / f"test-a{alpha:g}-{t}.npz").is_file() for t in TEST_SETS}
        subsets = [t for t in test_subsets() if t.name in args.sets or cached[t.name]]  # --sets in several steps
        full = score_table(subsets, (alpha,), work, "test")  # the choice, scored once
        table = {row: full[row] for row in ("first stage", choice["row"])}
        if alpha == 1.0:  # same weights as the shipped default: its row doubles as a check against quality.json
            table["a=1: listwise"] = full["a=1: listwise"]
        table = {**published_baselines(), **table}
        (work / "test.json").write_text(json.dumps({"table": table, "choice": choice}, indent=1), encoding="utf-8")
        print("\n".join(markdown_table(table, TEST_SETS, choice["row"])))
    else:
        write_report(work)


def write_report(work: Path) -> None:
    dev = json.loads((work / "dev.json").read_text(encoding="utf-8"))
    test_path = work / "test.json"
    test = {"table": published_baselines()}
    if test_path.is_file():
        test = json.loads(test_path.read_text(encoding="utf-8"))
    choice = dev["choice"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "selection.json").write_text(json.dumps({"dev": dev, "test": test}, indent=1) + "\n", encoding="utf-8")
    lines = [
        "# Selection on a dev split, then the test sets once (issue #19)",
        "",
        "Command: `python benchmarks/selection.py --stage dev && python benchmarks/selection.py --stage test "
        "&& python benchmarks/selection.py --stage report`. Machine: 2-core Intel Xeon CPU (shared), "
        "torch CPU, no GPU. nDCG@10 x 100.",
        "",
        f"Rows: `a` = interpolation weight of the trained model (0 = base all-MiniLM-L6-v2, 1 = bundled "
        f"`{TRAINED}`); `listwise` = the paper's score (cosine to the prompt embedding); `listwise + w q (form)` = "
        "cosine to normalize(p + w q) with the plain or `Instruct:` query embedding q.",
        "",
        "## Dev (training material only; `trec-dl-2021` and `scifact-train` were seen by the trained weights)",
        "",
        *markdown_table(dev["table"], DEV_SETS, choice["row"]),
        "",
        f"Chosen: **{choice['row']}** (dev mean {choice['dev_mean']:.2f}, worst dev subset vs base plain cosine "
        f"{choice['worst_gain']:+.2f}; {choice['eligible']} of {choice['candidates']} listwise candidates were level "
        "with base cosine on every dev subset).",
        "",
        "## Test (scored once, after the choice)",
        "",
        *markdown_table(test["table"], TEST_SETS, choice["row"]),
        "",
        "Rows marked [quality.json] come from `benchmarks/quality.py` (the same `e2rank_core.evaluation` pipeline; "
        "the embeddings of this script's core were checked equal to 1e-7 on dev queries). `n/a`: not scored.",
        "",
    ]
    (RESULTS / "selection.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
