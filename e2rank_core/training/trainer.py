"""Stage-2 E2Rank training of any sentence-transformers model, on sentence-transformers' own trainer.

The pieces:

* :class:`E2RankDataCollator` tokenises each sample with the core's rules, exactly as inference does: the
  retrieval query (``Instruct: {task}\\nQuery:{query}``), the listwise prompt built from the sample's documents in
  their given order (fitted to the prompt token budget), and the documents (word cut, token budget, EOS for
  decoders). It pads with the core's padding (left for decoders, right for encoders). The ST default collator
  cannot be used: it tokenises each text column independently with the model's own preprocessing, which would
  train on inputs the reranker never sees, and a sample here is one query + one prompt + 16 documents.
* :class:`~e2rank_core.training.losses.E2RankLoss`, a sentence-transformers loss module (1.0 InfoNCE + 2.0 RankNet).
* ``SentenceTransformerTrainer`` does the rest: AdamW, linear warmup schedule, gradient accumulation, clipping,
  checkpoints every ``save_steps`` and resume, the progress bar, logging of each loss part.

Example::

    from e2rank_core.training import TrainConfig, train

    result = train(TrainConfig("sentence-transformers/all-MiniLM-L6-v2", ["train.jsonl"], "my-e2rank"))
    # result.output_dir loads with E2RankModel(result.output_dir) and SentenceTransformer(result.output_dir)
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..backend import EmbeddingBackend
from ..model import E2RankModel
from ..prompts import retrieval_query_text
from .data import TrainingList, read_jsonl
from .losses import INFONCE_TEMPERATURE, RANKNET_LOSS_FACTOR, RANKNET_SCALE, E2RankLoss

logger = logging.getLogger("e2rank.training")


@dataclass
class E2RankDataCollator:
    """Turns ``train.jsonl`` rows into model inputs with the core's tokenisation and padding.

    Output keys: ``query_*``, ``prompt_*``, ``document_*`` (``input_ids``, ``attention_mask``, ...), where the
    documents of all samples are flattened in sample order (``B * K`` rows), and ``label``: the ``(B, K)``
    0-based teacher position of every document.

    Example::

        collator = E2RankDataCollator(E2RankModel("sentence-transformers/all-MiniLM-L6-v2").backend)
        batch = collator([{"query": "q", "document": ["a", "b"], "ranking": [2, 1]}])
    """

    backend: EmbeddingBackend
    instruction: str | None = None
    plain_queries: bool = False
    valid_label_columns: list[str] = field(default_factory=lambda: ["ranking"])

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("features must hold at least one sample")
        items = [
            TrainingList(f["query"], list(f["document"]), list(f["ranking"]), f.get("source") or "") for f in features
        ]
        size = len(items[0].document)
        if any(len(item.document) != size for item in items):
            raise ValueError("every list in a batch must have the same number of documents")
        backend = self.backend
        query_texts = [retrieval_query_text(i.query, self.instruction, plain=self.plain_queries) for i in items]
        queries = backend.encode_texts(query_texts, kind="query")
        prompts = [backend.encode_prompt(item.query, item.document) for item in items]
        documents = backend.encode_texts([d for item in items for d in item.document], kind="document")
        batch: dict[str, torch.Tensor] = {}
        for prefix, encoded in (("query", queries), ("prompt", prompts), ("document", documents)):
            for key, value in backend.pad_batch([e.input_ids for e in encoded]).items():
                batch[f"{prefix}_{key}"] = value.cpu()
        batch["label"] = torch.tensor([item.teacher_positions() for item in items], dtype=torch.long)
        return batch


@dataclass
class TrainConfig:
    """Settings of one training run. Defaults: the paper's loss, a small encoder on a CPU.

    ``batch_size`` is the number of lists (queries) per forward batch; the in-batch negatives of InfoNCE are
    the other lists of that batch. ``max_document_tokens`` / ``max_prompt_tokens`` set the core's budgets (None:
    the model's defaults, the same as at inference). ``max_seconds`` is a time budget: training stops after the
    first optimizer step past it (resumed time included) and saves the model as usual; the learning-rate schedule
    is still planned for the full run, so size ``epochs`` to finish inside the budget and treat this as a guard.
    ``plain_queries`` trains retrieval queries without the ``Instruct:`` wrapper (for bases such as all-MiniLM-L6-v2
    that never saw one); ``anchor_factor`` > 0 adds the anchor term (``losses.anchor_loss``) against a frozen copy of
    ``anchor_model`` (default ``base_model``).
    """

    base_model: str
    train_files: list[str]
    output_dir: str
    epochs: float = 1.0
    batch_size: int = 8
    gradient_accumulation: int = 1
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    ranknet_factor: float = RANKNET_LOSS_FACTOR
    embed_factor: float = 1.0
    temperature: float = INFONCE_TEMPERATURE
    ranknet_scale: float = RANKNET_SCALE
    max_document_tokens: int | None = None
    max_prompt_tokens: int | None = None
    max_steps: int | None = None
    max_seconds: float | None = None
    save_steps: int = 50
    logging_steps: int = 1
    seed: int = 0
    device: str | None = None
    resume: bool = True
    progress_bar: bool = True
    instruction: str | None = None
    plain_queries: bool = False
    anchor_factor: float = 0.0
    anchor_model: str | None = None


@dataclass
class TrainResult:
    """Where the model went, how long it took, and the logged losses."""

    output_dir: str
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    plot: str | None = None


ELAPSED_FILE = "e2rank_elapsed.json"


def _elapsed_callback(start: float, earlier_seconds: float, max_seconds: float | None = None) -> Any:
    """A trainer callback that stores the training seconds so far in each checkpoint and enforces ``max_seconds``.

    A resumed run adds them to its own, so ``seconds`` in ``train_config.json`` is the whole training time
    (minus the steps redone after the last checkpoint), not only the last call's.
    """
    from transformers import TrainerCallback

    class ElapsedTime(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if max_seconds is not None and earlier_seconds + time.perf_counter() - start >= max_seconds:
                logger.warning("e2rank: time budget of %.0f s reached at step %d", max_seconds, state.global_step)
                control.should_training_stop = True

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if checkpoint.is_dir():
                seconds = earlier_seconds + time.perf_counter() - start
                (checkpoint / ELAPSED_FILE).write_text(json.dumps({"seconds": round(seconds, 1)}) + "\n")

    return ElapsedTime()


def _seconds_before(checkpoint: str | None) -> float:
    """Training seconds recorded in a checkpoint (0 when there is none or it predates the record)."""
    path = Path(checkpoint) / ELAPSED_FILE if checkpoint else None
    if path is None or not path.is_file():
        return 0.0
    return float(json.loads(path.read_text())["seconds"])


def load_lists(paths: list[str]) -> list[TrainingList]:
    """All samples of the given ``train.jsonl`` files, validated."""
    lists = [item for path in paths for item in read_jsonl(path)]
    if not lists:
        raise ValueError(f"train_files {paths} hold no samples")
    return lists


def _anchor(config: TrainConfig, device: str) -> torch.nn.Module:
    """A frozen float32 copy of the anchor model (default: the base model) for the anchor loss."""
    anchor = E2RankModel(config.anchor_model or config.base_model, device=device, dtype="float32", cache_size=0)
    return anchor.backend.st_model


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.base_model`` with 1.0 x InfoNCE + ``ranknet_factor`` x RankNet; save to ``output_dir``.

    ``output_dir`` becomes a sentence-transformers folder (loads in :class:`~e2rank_core.E2RankModel`, plain
    ``SentenceTransformer`` and every adapter); trainer checkpoints go to ``output_dir/checkpoints`` every
    ``save_steps`` optimizer steps and, with ``resume=True``, a rerun picks up from the last one. The loss log is
    written to ``output_dir/training/history.json`` and plotted to ``output_dir/training/loss_curve.png``.
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    if config.batch_size < 1 or config.gradient_accumulation < 1:
        raise ValueError("batch_size and gradient_accumulation must be >= 1")
    if config.max_seconds is not None and config.max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {config.max_seconds}")
    torch.manual_seed(config.seed)
    lists = load_lists(config.train_files)
    if len(lists) < config.batch_size:
        raise ValueError(f"{len(lists)} training lists are fewer than one batch of {config.batch_size}")
    model = E2RankModel(
        config.base_model,
        device=config.device,
        dtype="float32",
        cache_size=0,
        max_document_tokens=config.max_document_tokens,
        max_prompt_tokens=config.max_prompt_tokens,
    )
    st_model = model.backend.st_model
    output = Path(config.output_dir)
    (output / "training").mkdir(parents=True, exist_ok=True)
    checkpoints = output / "checkpoints"

    steps_per_epoch = max(1, (len(lists) // config.batch_size) // config.gradient_accumulation)
    total_steps = config.max_steps or math.ceil(steps_per_epoch * config.epochs)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=math.ceil(config.warmup_ratio * total_steps),
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        dataloader_drop_last=True,  # incomplete batches are dropped, as the official loader does
        report_to="none",
        disable_tqdm=not config.progress_bar,
        use_cpu=model.device == "cpu",
        remove_unused_columns=False,
    )
    dataset = Dataset.from_list([asdict(item) for item in lists])
    loss = E2RankLoss(
        st_model,
        temperature=config.temperature,
        ranknet_scale=config.ranknet_scale,
        embed_factor=config.embed_factor,
        ranknet_factor=config.ranknet_factor,
        anchor_model=_anchor(config, model.device) if config.anchor_factor > 0 else None,
        anchor_factor=config.anchor_factor,
    )
    trainer = SentenceTransformerTrainer(
        model=st_model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        data_collator=E2RankDataCollator(model.backend, config.instruction, config.plain_queries),
    )
    resume_from = get_last_checkpoint(str(checkpoints)) if config.resume and checkpoints.is_dir() else None
    if resume_from:
        logger.warning("e2rank: resuming from %s", resume_from)
    earlier_seconds = _seconds_before(resume_from)
    start = time.perf_counter()
    trainer.add_callback(_elapsed_callback(start, earlier_seconds, config.max_seconds))
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = earlier_seconds + time.perf_counter() - start
    st_model.eval()
    # Record the query format it was trained with, so E2RankModel embeds its retrieval queries that way by default.
    st_model.prompts = {
        **(st_model.prompts or {}),
        "query": retrieval_query_text("", config.instruction, plain=config.plain_queries),
        "document": "",
    }
    st_model.save_pretrained(str(output))
    history = [row for row in trainer.state.log_history if "loss" in row]
    (output / "training" / "history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    settings = {
        **asdict(config),
        "seconds": round(seconds, 1),
        "samples": len(lists),
        "resumed_from": Path(resume_from).name if resume_from else None,
    }
    (output / "training" / "train_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    plot = plot_history(history, output / "training" / "loss_curve.png")
    return TrainResult(str(output), int(trainer.state.global_step), seconds, history, plot)


def plot_history(history: list[dict[str, Any]], path: str | Path) -> str | None:
    """Loss curves (total, weighted InfoNCE, weighted RankNet) against the optimizer step, as a PNG."""
    rows = [row for row in history if "loss" in row and "step" in row]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    steps = [row["step"] for row in rows]
    for key, label in (
        ("loss", "total"),
        ("infonce", "1.0 x InfoNCE"),
        ("ranknet", "ranknet_factor x RankNet"),
        ("anchor", "anchor_factor x anchor"),
    ):
        if all(key in row for row in rows):
            values = [float(row[key]) for row in rows]
            window = max(1, len(values) // 20)
            smooth = [
                sum(values[max(0, i - window + 1) : i + 1]) / (i + 1 - max(0, i - window + 1))
                for i in range(len(values))
            ]
            axis.plot(steps, smooth, label=label)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel(f"loss (moving mean over {max(1, len(rows) // 20)} logs)")
    axis.set_title("E2Rank stage-2 training")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return str(path)
