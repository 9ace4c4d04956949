"""Reproducible E2Rank stage-2 experiment: train all-MiniLM-L6-v2 on TREC DL 2021 + SciFact train, evaluate.

Usage (from the repository root, CPU, three rounds of about 50 min of training each on 2 cores): the commands in
``REPRODUCE`` below; ``--stage ship`` with the same arguments then copies the model into the package. One run on a
GPU instead (``REPRODUCE_GPU``, about 7 minutes on an H100) writes ``benchmarks/results/training_gpu.md``.

Stages (``--stage``): ``data`` writes the train.jsonl files, ``train`` runs ``e2rank_core.training.train``,
``eval`` scores BM25 / base cosine / base listwise / trained listwise / trained cosine (nDCG@10 with
ir-measures, through ``e2rank_core.evaluation``) on trec-dl-2019 (BM25 top-100 run), scifact test, cranfield and
cisi, and writes ``benchmarks/results/<report>.md`` + ``.json`` + the loss plot (``--report``, default
``training``). ``run`` does those three; ``all`` also ships the model into the package (``ship``).

Training material (never an evaluation query): trec-dl-2021 (qrels/train.tsv, its BM25 top-100 run), scifact
train (qrels/train.tsv, bm25s top-100 over its corpus) and unlabeled trec-dl-2022 (its BM25 top-100 run). Teacher:
relevance grade first, the base model's cosine (plain queries) breaking ties and ranking the unlabeled lists
(``--teacher first-stage``: first-stage order instead, no DL 2022).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The rounds behind benchmarks/results/training.md and the shipped model (each starts from the previous one).
REPRODUCE = """\
  export HF_HUB_OFFLINE=1
  python benchmarks/train_minilm.py --data ../shared/data --work /tmp/e2rank-train --epochs 1.5 --stage all
  python benchmarks/train_minilm.py --data ../shared/data --work /tmp/e2rank-train2 --init /tmp/e2rank-train/model \\
      --seed 1 --scifact-per-query 2 --scifact-lists 2000 --dl22-lists 4 --epochs 1 --stage all
  python benchmarks/train_minilm.py --data ../shared/data --work /tmp/e2rank-train3 --init /tmp/e2rank-train2/model \\
      --seed 2 --scifact-per-query 2 --scifact-lists 2000 --dl22-lists 4 --epochs 1 --stage all"""
# One run from the base on a GPU (benchmarks/results/training_gpu.md): more lists, a larger batch, more epochs.
REPRODUCE_GPU = """\
  export HF_HUB_OFFLINE=1
  python benchmarks/train_minilm.py --data ../shared/data --work /tmp/e2rank-gpu --device cuda --report training_gpu \\
      --dl21-lists 16 --scifact-per-query 4 --scifact-lists 4000 --dl22-lists 16 --batch-size 16 --epochs 4 \\
      --save-steps 400 --max-minutes 5 --stage run"""
GPU_INTRO = (
    "One run from the base model on a GPU (the same script, data builder and loss as the CPU rounds in "
    "`training.md`; twice the lists, batch 16, 4 epochs). Reproduce:\n\n"
)
RESULTS = REPO / "benchmarks" / "results"
BASE = "sentence-transformers/all-MiniLM-L6-v2"
EVAL_SETS = ("trec-dl-2019", "scifact", "cranfield", "cisi")


def build_data(data: Path, work: Path, args: argparse.Namespace) -> list[str]:
    from e2rank_core import E2RankModel
    from e2rank_core.training import build_lists, write_jsonl

    work.mkdir(parents=True, exist_ok=True)
    # Teacher for the ties the judgments leave (negatives among themselves) and for unlabeled DL 2022: the base
    # model's own cosine with plain queries (its best zero-shot ranking), unless --teacher first-stage.
    teacher = E2RankModel(args.base, device=args.device, plain_queries=True) if args.teacher == "base-cosine" else None
    held_out: dict[str, set[str]] = {}
    if args.holdout_dev:  # the dev split of benchmarks/selection.py: never trained on
        from selection import dev_query_ids

        held_out = dev_query_ids(data)
    dl21 = build_lists(
        data / "trec-dl-2021", split="train", lists_per_query=args.dl21_lists, seed=args.seed, teacher=teacher,
        exclude_queries=held_out.get("trec-dl-2021", ()),
    )  # fmt: skip
    scifact = build_lists(data / "scifact", split="train", max_positives=2, lists_per_query=args.scifact_per_query,
                          seed=args.seed, teacher=teacher, exclude_queries=held_out.get("scifact", ()))  # fmt: skip
    scifact = random.Random(args.seed).sample(scifact, min(args.scifact_lists, len(scifact)))
    sets = [("trec-dl-2021", dl21), ("scifact", scifact)]
    if teacher is not None and args.dl22_lists > 0:
        dl22 = build_lists(data / "trec-dl-2022", split=None, lists_per_query=args.dl22_lists, seed=args.seed,
                           teacher=teacher)  # fmt: skip
        sets.append(("trec-dl-2022", dl22))
    files = []
    for name, lists in sets:
        path = work / f"train.{name}.jsonl"
        print(f"{name}: {write_jsonl(lists, path)} lists -> {path}")
        files.append(str(path))
    return files


def run_training(files: list[str], work: Path, args: argparse.Namespace) -> str:
    from e2rank_core.training import TrainConfig, train

    result = train(
        TrainConfig(
            base_model=args.init or args.base,
            train_files=files,
            output_dir=str(work / args.name),
            epochs=args.epochs,
            batch_size=args.batch_size,
            gradient_accumulation=args.grad_accum,
            learning_rate=args.lr,
            ranknet_factor=args.ranknet_factor,
            embed_factor=args.embed_factor,
            anchor_factor=args.anchor_factor,
            plain_queries=args.plain_queries,
            max_document_tokens=args.train_doc_tokens,
            save_steps=args.save_steps,
            max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
            seed=args.seed,
            device=args.device,
            resume=not args.no_resume,
        )
    )
    print(f"trained {result.steps} steps in {result.seconds:.0f} s -> {result.output_dir}")
    return result.output_dir


def evaluate_all(
    data: Path, trained: str | None, work: Path, base_rows: bool = True, base_model: str = BASE, device: str = "cpu"
) -> dict[str, dict[str, float]]:
    """BM25 and base rows (cached in ``work/base_table.json``), then the trained rows (cached in
    ``work/trained_table.json``) when ``trained`` is given."""
    from e2rank_core import E2RankModel
    from e2rank_core.evaluation import evaluate

    cache = work / "base_table.json"
    base_names = ("BM25", "base cosine (plain query)", "base cosine (Instruct query)", "base listwise (zero-shot)")
    table: dict[str, dict[str, float]] = json.loads(cache.read_text(encoding="utf-8")) if cache.is_file() else {}
    table = {row: scores for row, scores in table.items() if row in base_names}  # never a trained row

    def score(row: str, name: str, model: E2RankModel | None, mode: str) -> None:
        if name in table.get(row, {}):
            return
        result = evaluate(model, data / name, mode=mode, show_progress_bar=False)
        table.setdefault(row, {})[name] = round(100 * result.measures["nDCG@10"], 2)
        print(f"{row:32s} {name:14s} {table[row][name]:6.2f} ({result.seconds:.0f} s)", flush=True)

    tuned_cache = work / f"trained_table.{Path(trained).name if trained else 'none'}.json"
    if tuned_cache.is_file():
        table.update(json.loads(tuned_cache.read_text(encoding="utf-8")))
    missing = base_rows and any(name not in table.get(row, {}) for row in base_names for name in EVAL_SETS)
    if missing:  # the base model is only loaded when a base row is still to be scored
        base_plain = E2RankModel(base_model, device=device, plain_queries=True)
        base = E2RankModel(base_model, device=device)
        base.cache = base_plain.cache  # same weights and budgets: reuse the document vectors
    for name in EVAL_SETS if missing else ():
        score("BM25", name, None, "first-stage")
        score("base cosine (plain query)", name, base_plain, "embedding")
        score("base cosine (Instruct query)", name, base, "embedding")
        score("base listwise (zero-shot)", name, base, "listwise")
        base_plain.cache.clear()
        work.mkdir(parents=True, exist_ok=True)
        base_table = {row: table[row] for row in base_names}
        cache.write_text(json.dumps(base_table, indent=1), encoding="utf-8")
    if trained is not None:
        tuned = E2RankModel(trained, device=device)
        for name in EVAL_SETS:
            score("trained listwise", name, tuned, "listwise")
            score("trained cosine (Instruct query)", name, tuned, "embedding")
            tuned.cache.clear()
            tuned_rows = {row: table[row] for row in ("trained listwise", "trained cosine (Instruct query)")}
            tuned_cache.write_text(json.dumps(tuned_rows, indent=1), encoding="utf-8")
    return table


def previous_rounds(init: str | None) -> list[dict[str, dict[str, float]]]:
    """The trained rows of the rounds before this one, oldest first, following each model's recorded base model
    while that model was evaluated by this script (``trained_table.<name>.json`` beside it)."""
    rounds: list[dict[str, dict[str, float]]] = []
    while init and Path(init).is_dir():
        cache = Path(init).parent / f"trained_table.{Path(init).name}.json"
        if not cache.is_file():
            break
        rounds.insert(0, json.loads(cache.read_text(encoding="utf-8")))
        config = Path(init) / "training" / "train_config.json"
        init = json.loads(config.read_text(encoding="utf-8"))["base_model"] if config.is_file() else None
    return rounds


def verdict(table: dict[str, dict[str, float]]) -> str:
    """The issue's target, checked on the last round: listwise >= base cosine + 3 on DL19, not worse elsewhere,
    trained cosine mean not below the base's."""
    base = table["base cosine (plain query)"]  # the base model's best cosine rerank
    listwise = table[[row for row in table if row.endswith("trained listwise")][-1]]
    cosine = table[[row for row in table if row.endswith("trained cosine (Instruct query)")][-1]]
    gaps = {name: listwise[name] - base[name] for name in EVAL_SETS}
    dl19 = gaps["trec-dl-2019"]
    worse = [f"{name} ({gap:+.2f})" for name, gap in gaps.items() if gap < 0]
    mean_cos = sum(cosine.values()) / len(cosine) - sum(base.values()) / len(base)
    lines = [
        f"- TREC DL 2019: trained listwise vs base cosine {dl19:+.2f} (target +3.00: "
        + ("met" if dl19 >= 3 else f"missed by {3 - dl19:.2f}")
        + ").",
        "- Other sets: "
        + ", ".join(f"{n} {g:+.2f}" for n, g in gaps.items() if n != "trec-dl-2019")
        + (f"; worse on {', '.join(worse)}." if worse else "; not worse anywhere."),
        f"- Trained cosine (retrieval) mean vs base cosine mean: {mean_cos:+.2f}"
        + (" (no drop)." if mean_cos >= 0 else " (a drop)."),
    ]
    return "\n".join(lines) + "\n"


WHAT_WE_TRIED = """\
What moved the numbers (each measured with this script, nDCG@10 on TREC DL 2019 unless said otherwise):

- Zero-shot, the base model's listwise prompt is far below its own cosine (52.58 vs 64.24): all-MiniLM-L6-v2
  mean-pools a 512-token prompt in which each of the 20 documents gets about 22 tokens. A zero-shot sweep of the
  number of documents in the prompt: K=1 54.54, 3 56.74, 5 56.59, 10 53.48, 20 52.58. After training, K=20 is
  the best on DL 2019 (K=5 65.06, 10 65.20, 20 66.45 for the shipped weights; `benchmarks/prompt_size.py`).
- Teacher: relevance grade first. Our first run broke the many grade ties (negatives among themselves) by
  first-stage order, i.e. taught the prompt BM25's order, and reached listwise 53.79 (fewer steps too, so not a
  controlled comparison). The base model's own cosine (plain queries) as tie-breaker, and as the ranking of
  unlabeled DL 2022 lists, is the default now (`--teacher first-stage` restores the other).
- Steps matter most on 2 cores: round 1 checkpoints at step 80 gave listwise 60.04 / cosine 62.81, at step 160
  61.62 / 64.14, the final (260 steps) 62.58 / 65.02. Each later round starts from the previous model with
  freshly drawn negatives (a new seed; twice the SciFact lists from round 2 on): round 2 gave +2.73 listwise,
  round 3 +1.25 more. A 4th round (seed 3, run on a GPU from the shipped round-3 weights) went back: listwise
  65.96 on DL 2019 (-0.60), four-set mean 54.51 (-0.22; SciFact 72.60, Cranfield 37.23, CISI 42.24), so the
  rounds have levelled off and round 3 is shipped. The rounds were compared on these evaluation sets (there is no
  separate dev set), so the choice of how many rounds to ship is tuned on them; no evaluation query was ever
  trained on.
- lr 5e-5, batch 8 lists, documents capped at 64 tokens in training (256 at inference), RankNet factor 2.0 as in
  the paper.
- One GPU run (`training_gpu.md`): from the base on an H100, 5300 lists (twice the draws per query), batch 16,
  4 epochs, 1324 steps in 293 s, 3.1x the list passes of the three CPU rounds together. Listwise 66.32 on DL 2019
  (+2.08 over base cosine), four-set mean 54.27 (CISI -1.89): below the three CPU rounds (66.56, 54.73), so more
  epochs over one draw of negatives did not beat a fresh draw per round. The shipped model stays round 3.

Left to try: several GPU rounds with a fresh draw each, a stronger teacher (an official E2Rank model's ranking),
fewer documents in the prompt for a 512-position encoder, a decoder base with a longer context.
"""


def write_report(table: dict[str, dict[str, float]], work: Path, args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    trained = work / args.name
    config = json.loads((trained / "training" / "train_config.json").read_text(encoding="utf-8"))
    history = json.loads((trained / "training" / "history.json").read_text(encoding="utf-8"))
    shutil.copy(trained / "training" / "loss_curve.png", RESULTS / f"{args.report}_loss_curve.png")
    config.update(dl21_lists=args.dl21_lists, scifact_lists=args.scifact_lists)
    resumed = f" (interrupted, resumed from {config['resumed_from']})" if config.get("resumed_from") else ""
    (RESULTS / f"{args.report}.json").write_text(
        json.dumps({"ndcg@10": table, "config": config, "history": history}, indent=1) + "\n", encoding="utf-8"
    )
    gpu = args.report == "training_gpu"
    text = (
        "# E2Rank stage-2 training of all-MiniLM-L6-v2 (nDCG@10)\n\n"
        + (GPU_INTRO if gpu else "Reproduce (each round starts from the previous round's model):\n\n")
        + "```bash\n"
        + (REPRODUCE_GPU if gpu else REPRODUCE).replace("\n  ", "\n")[2:]
        + "\n```"
        "\n\n" + markdown_table(table) + "\n"
        f"Training{'' if gpu else ' (last round)'}: {config['samples']} lists of 16 docs, "
        f"{config['seconds']:.0f} s on {_device_name(args.device)}{resumed}, {history[-1]['step']} steps, "
        f"batch {config['batch_size']} x accumulation {config['gradient_accumulation']}, lr {config['learning_rate']}, "
        f"epochs {config['epochs']}, loss 1.0 InfoNCE (t={config['temperature']}) + {config['ranknet_factor']} RankNet "
        f"(scale {config['ranknet_scale']}), document budget {config['max_document_tokens']} tokens in training.\n\n"
        f"Loss curve: `{args.report}_loss_curve.png`.\n\n"
        f"## Against the issue's target{'' if gpu else ' (last round)'}\n\n"
        + verdict(table)
        + ("" if gpu else "\n" + WHAT_WE_TRIED)
    )
    (RESULTS / f"{args.report}.md").write_text(text, encoding="utf-8")
    print(text)


SHIPPED = REPO / "e2rank_core" / "models" / "minilm-l6-e2rank"

MODEL_CARD = """{header}
# e2rank/minilm-l6-e2rank

all-MiniLM-L6-v2 fine-tuned with the E2Rank stage-2 objective (arXiv 2510.22733) so that one embedding model
both retrieves (cosine of query and document) and reranks listwise (cosine of a listwise prompt - the query plus
its top candidates - and each document). Ships inside the `e2rank` package: `E2RankModel("e2rank/minilm-l6-e2rank")`.

Weights are stored in float16 (size); `config.json` says float32, so transformers, sentence-transformers and
`E2RankModel` load it in float32 by default.

## Use

```python
from e2rank_core import E2RankModel

model = E2RankModel("e2rank/minilm-l6-e2rank")
hits = model.rerank("capital of France", ["Berlin is in Germany.", "Paris is the capital of France."])
```

Plain sentence-transformers also loads the folder (`SentenceTransformer(path)`); for retrieval embed queries as
`Instruct: Given a web search query, retrieve relevant passages that answer the query\\nQuery:{{query}}`
(what `E2RankModel.embed_queries` does), documents as plain text.

## Recipe

- Base: `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0), 384-d, 512 positions.
- Loss: 1.0 x InfoNCE (temperature 0.03; retrieval-format query vs. its 16 documents, positive = teacher's top,
  negatives = the other 15 + all documents of the other queries in the batch) + {ranknet_factor} x RankNet
  (cosine x 10 between the listwise prompt of the 16 documents and each document; all 120 ordered pairs, mean).
- Data ({samples} lists of 16 documents in the last round): TREC DL 2021 passage (53 judged queries, BM25
  top-100), SciFact train claims (bm25s top-100 candidates) and the 76 unlabeled TREC DL 2022 queries (BM25
  top-100). Teacher: the human judgments (relevance grade first), ties - most pairs, the negatives among
  themselves - broken by the base model's own cosine with plain queries; DL 2022 lists are ranked by that cosine
  alone. Documents keep first-stage order inside the prompt.
- Optimisation: sentence-transformers' `SentenceTransformerTrainer`, AdamW, linear schedule, 10% warmup, batch
  {batch_size} lists, on 2 CPU cores, in {num_rounds} rounds, the first from the base, each later one from the
  previous round's model with a fresh draw of random negatives:
{rounds}
  Documents capped at {doc_tokens} tokens during training (256 at inference), listwise prompt 512 tokens.
- Reproduce (about {hours:.1f} h on 2 CPU cores):

  ```bash
{reproduce}
  ```

## Results (nDCG@10; first stage = BM25 top-100; listwise = top-20 candidates in the prompt)

{table}
No evaluation query was used in training (TREC DL 2019, SciFact test, Cranfield and CISI are held out). The table
scores the float32 weights before the float16 cast; `benchmarks/results/quality.md` in the e2rank repository
scores the shipped float16 weights (`python benchmarks/quality.py`).

{licences}"""


def round_configs(model_dir: Path) -> list[tuple[str, float]]:
    """One line per training round (oldest first) from each model's recorded config, and its training seconds."""
    rounds: list[tuple[str, float]] = []
    folder: Path | None = model_dir
    while folder is not None and (folder / "training" / "train_config.json").is_file():
        config = json.loads((folder / "training" / "train_config.json").read_text(encoding="utf-8"))
        history = json.loads((folder / "training" / "history.json").read_text(encoding="utf-8"))
        sizes = []
        for file in map(Path, config["train_files"]):
            name = file.name.removeprefix("train.").removesuffix(".jsonl")
            count = sum(1 for _ in file.open(encoding="utf-8")) if file.is_file() else "?"
            sizes.append(f"{name} {count}")
        rounds.insert(0, (
            f"{config['samples']} lists ({', '.join(sizes)}), seed {config['seed']}, epochs {config['epochs']:g}, "
            f"{history[-1]['step']} steps, lr {config['learning_rate']:g}, {config['seconds']:.0f} s.",
            config["seconds"],
        ))  # fmt: skip
        base = Path(config["base_model"])
        folder = base if base.is_dir() else None
    return rounds


def markdown_table(table: dict[str, dict[str, float]]) -> str:
    header = "| run | " + " | ".join(EVAL_SETS) + " | avg |\n|---|" + "---:|" * (len(EVAL_SETS) + 1) + "\n"
    rows = ""
    for row, values in table.items():
        cells = [f"{values[name]:.2f}" if name in values else "n/a" for name in EVAL_SETS]
        done = [values[name] for name in EVAL_SETS if name in values]
        mean = f"{sum(done) / len(done):.2f}" if len(done) == len(EVAL_SETS) else "n/a"
        rows += f"| {row} | " + " | ".join(cells) + f" | {mean} |\n"
    return header + rows


def ship(trained_dir: Path, force: bool) -> None:
    """Copy the trained model into the package as float16 safetensors, with a model card, if it beats base cosine
    (see the rule below)."""
    from safetensors.torch import load_file, save_file

    results = json.loads((RESULTS / "training.json").read_text(encoding="utf-8"))
    table, config = results["ndcg@10"], results["config"]

    def mean(row: str) -> float:
        return sum(table[row][name] for name in EVAL_SETS) / len(EVAL_SETS)

    # Ship when the trained model, as a reranker, beats what the package offers without it: its listwise rerank
    # beats the base model's best cosine rerank on the four-collection mean, and its own cosine (retrieval) mean
    # does not drop below the base's. (The stricter target, +3 on DL19 listwise, is reported, not required.)
    listwise = mean([row for row in table if row.endswith("trained listwise")][-1])  # last round
    cosine = mean([row for row in table if row.endswith("trained cosine (Instruct query)")][-1])
    base = max(mean("base cosine (plain query)"), mean("base cosine (Instruct query)"))
    if (listwise <= base or cosine < base) and not force:
        print(
            f"not shipped: mean nDCG@10 trained listwise {listwise:.2f} / cosine {cosine:.2f} vs base cosine {base:.2f}"
        )
        return
    shutil.rmtree(SHIPPED, ignore_errors=True)
    shutil.copytree(trained_dir, SHIPPED, ignore=shutil.ignore_patterns("checkpoints", "training", "README.md"))
    weights = load_file(SHIPPED / "model.safetensors")
    save_file({k: v.half().contiguous() for k, v in weights.items()}, SHIPPED / "model.safetensors", {"format": "pt"})
    model_config = json.loads((SHIPPED / "config.json").read_text(encoding="utf-8"))
    model_config["dtype"] = "float32"  # load in float32 by default; only the stored weights are float16
    (SHIPPED / "config.json").write_text(json.dumps(model_config, indent=2) + "\n", encoding="utf-8")
    from selection import CARD_HEADER, LICENCES

    rounds = round_configs(trained_dir)
    card = MODEL_CARD.format(
        header=CARD_HEADER, licences=LICENCES,
        ranknet_factor=config["ranknet_factor"], samples=config["samples"], batch_size=config["batch_size"],
        doc_tokens=config["max_document_tokens"], table=markdown_table(table), reproduce=REPRODUCE,
        num_rounds=len(rounds), rounds="\n".join(f"  {n}. {text}" for n, (text, _) in enumerate(rounds, start=1)),
        hours=sum(seconds for _, seconds in rounds) / 3600 + 0.3,  # + data building and evaluation
    )  # fmt: skip
    (SHIPPED / "README.md").write_text(card, encoding="utf-8")
    size = (SHIPPED / "model.safetensors").stat().st_size / 2**20
    print(f"shipped to {SHIPPED} ({size:.1f} MiB)")


def _device_name(device: str) -> str:
    """What the report says the run used: "CPU" or the accelerator's name."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return "CPU" if device == "cpu" else device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/e2rank-train"))
    stages = ["data", "train", "eval-base", "eval-trained", "eval", "ship", "run", "all"]
    parser.add_argument("--stage", choices=stages, default="all")
    parser.add_argument("--force-ship", action="store_true", help="ship even if it does not beat base cosine")
    parser.add_argument("--dl21-lists", type=int, default=8, help="lists per trec-dl-2021 query (8)")
    parser.add_argument("--scifact-lists", type=int, default=1000, help="scifact train lists kept (all)")
    parser.add_argument("--scifact-per-query", type=int, default=1, help="lists per scifact train query (1)")
    parser.add_argument("--dl22-lists", type=int, default=2, help="lists per unlabeled trec-dl-2022 query (2)")
    parser.add_argument("--teacher", choices=["base-cosine", "first-stage"], default="base-cosine",
                        help="what breaks grade ties and ranks unlabeled lists (base-cosine)")  # fmt: skip
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--ranknet-factor", type=float, default=2.0)
    parser.add_argument("--embed-factor", type=float, default=1.0, help="InfoNCE weight (1.0, the paper's)")
    parser.add_argument("--anchor-factor", type=float, default=0.0,
                        help="weight of the anchor to the frozen base's query/doc embeddings (0: off)")  # fmt: skip
    parser.add_argument("--plain-queries", action="store_true", help="train retrieval queries without Instruct:")
    parser.add_argument("--holdout-dev", action="store_true",
                        help="build no list for the dev queries of benchmarks/selection.py")  # fmt: skip
    parser.add_argument("--train-doc-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", default=None, help="start from this model folder instead of the base (a 2nd round)")
    parser.add_argument("--name", default="model", help="output folder under --work (model)")
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--base", default=BASE, help=f"base model id or folder ({BASE})")
    parser.add_argument("--device", default="cpu", help="where to build, train and evaluate (cpu)")
    parser.add_argument("--save-steps", type=int, default=40, help="checkpoint every N optimizer steps (40)")
    parser.add_argument("--max-minutes", type=float, default=None, help="training time budget (none)")
    parser.add_argument("--report", default="training", help="benchmarks/results/<report>.md/.json (training)")
    args = parser.parse_args()
    files = sorted(str(p) for p in args.work.glob("train.*.jsonl"))
    if args.stage in ("data", "run", "all"):
        files = build_data(args.data, args.work, args)
    if args.stage in ("train", "run", "all"):
        run_training(files, args.work, args)
    if args.stage == "eval-base":
        evaluate_all(args.data, None, args.work, base_model=args.base, device=args.device)
    if args.stage == "eval-trained":
        evaluate_all(
            args.data, str(args.work / args.name), args.work, base_rows=False, base_model=args.base, device=args.device
        )
    if args.stage in ("eval", "run", "all"):
        table = evaluate_all(args.data, str(args.work / args.name), args.work, base_model=args.base, device=args.device)
        rounds = [*previous_rounds(args.init), {k: v for k, v in table.items() if k.startswith("trained")}]
        if len(rounds) > 1:
            table = {k: v for k, v in table.items() if not k.startswith("trained")}
            for number, rows in enumerate(rounds, start=1):
                table.update({f"round {number}: {k}": v for k, v in rows.items()})
        write_report(table, args.work, args)
    if args.stage in ("ship", "all"):
        ship(args.work / args.name, args.force_ship)


if __name__ == "__main__":
    main()
