"""E2Rank stage-2 training: ``e2rank train`` / :func:`train`, data in the official train.jsonl format.

Example::

    from e2rank_core.training import TrainConfig, build_lists, train, write_jsonl

    write_jsonl(build_lists("data/trec-dl-2021", split="train"), "train.jsonl")
    train(TrainConfig("sentence-transformers/all-MiniLM-L6-v2", ["train.jsonl"], "minilm-e2rank"))
"""

from .data import TrainingList, build_lists, read_jsonl, teacher_ranking, write_jsonl
from .losses import E2RankLoss, anchor_loss, info_nce_loss, ranknet_loss
from .trainer import E2RankDataCollator, TrainConfig, TrainResult, plot_history, train

__all__ = [
    "E2RankDataCollator",
    "E2RankLoss",
    "TrainConfig",
    "TrainResult",
    "TrainingList",
    "anchor_loss",
    "build_lists",
    "info_nce_loss",
    "plot_history",
    "ranknet_loss",
    "read_jsonl",
    "teacher_ranking",
    "train",
    "write_jsonl",
]
