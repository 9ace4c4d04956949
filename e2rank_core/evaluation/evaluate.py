"""Evaluate first stage, same-model cosine rerank and E2Rank listwise rerank on a BEIR collection."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..model import E2RankModel
from ..scale.common import EngineOptions
from .data import BeirCollection, bm25_run, load_beir, read_run, write_run

Mode = Literal["first-stage", "embedding", "listwise"]
MODES: tuple[str, ...] = ("first-stage", "embedding", "listwise")


@dataclass
class EvalResult:
    """Measures of one (model, collection, mode) evaluation, plus the run it scored."""

    collection: str
    mode: str
    model: str | None
    measures: dict[str, float]
    num_queries: int
    depth: int
    num_input_docs: int | None
    first_stage: str
    seconds: float
    run: dict[str, list[tuple[str, float]]] = field(repr=False, default_factory=dict)

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("run")
        return data


def first_stage(
    collection: BeirCollection, run_file: str | Path | None, depth: int, bm25: bool = False
) -> tuple[dict[str, list[str]], str]:
    """Candidates per query: bm25s when asked, else the given run, else the folder's bm25_top100.trec, else bm25s."""
    path = Path(run_file) if run_file else collection.run_path
    if path is not None and not bm25:
        return read_run(path, depth), str(path.name)
    return bm25_run(collection, depth), "bm25s"


def evaluate(
    model: E2RankModel | None,
    data_dir: str | Path,
    *,
    mode: Mode = "listwise",
    run_file: str | Path | None = None,
    bm25: bool = False,
    depth: int = 100,
    num_input_docs: int | None = None,
    measures: list[str] | None = None,
    split: str = "test",
    max_queries: int | None = None,
    show_progress_bar: bool = True,
    engine: str = "local",
    engine_options: EngineOptions | None = None,
) -> EvalResult:
    """Score one mode on one BEIR folder with ir-measures (nDCG@10 by default).

    Example::

        from e2rank_core import E2RankModel
        from e2rank_core.evaluation import evaluate

        model = E2RankModel("e2rank/minilm-l6-e2rank")
        print(evaluate(model, "../shared/data/trec-dl-2019", mode="listwise").measures)

    The first stage is ``run_file``, else the folder's ``bm25_top100.trec``, else (or with ``bm25=True``) BM25.
    Every unique candidate is embedded once per call and the vectors are reused by every query's rerank.
    ``engine="ray"`` (listwise only) reranks on Ray workers instead (``model`` may then be ``None``; the workers load
    ``engine_options.model``): see :mod:`e2rank_core.scale`.
    """
    import ir_measures

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if engine != "local" and mode != "listwise":
        raise ValueError(f"engine {engine!r} runs the listwise rerank only, not mode {mode!r}")
    if engine != "local" and engine_options is None:
        raise ValueError(f"engine {engine!r} needs engine_options (the model and the workers)")
    if mode != "first-stage" and model is None and engine == "local":
        raise ValueError(f"mode {mode!r} needs a model")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    parsed = [ir_measures.parse_measure(m) for m in (measures or ["nDCG@10"])]
    collection = load_beir(data_dir, split)
    start = time.perf_counter()
    candidates, source = first_stage(collection, run_file, depth, bm25)
    query_ids = sorted(q for q in collection.queries if q in candidates)
    if max_queries is not None:
        query_ids = query_ids[:max_queries]
    ranking: dict[str, list[tuple[str, float]]] = {}
    if mode == "first-stage":
        for qid in query_ids:
            docs = candidates[qid]
            ranking[qid] = [(d, float(len(docs) - i)) for i, d in enumerate(docs)]
    elif engine != "local":
        from ..scale import rerank_candidates

        assert engine_options is not None
        ranking = rerank_candidates(
            data_dir,
            {q: candidates[q] for q in query_ids},
            engine=engine,
            options=engine_options,  # type: ignore[arg-type]
        )
    else:
        assert model is not None
        unique = sorted({d for q in query_ids for d in candidates[q] if d in collection.corpus})
        vectors = model.embed_documents([collection.corpus[d] for d in unique], show_progress_bar=show_progress_bar)
        row_of = {d: i for i, d in enumerate(unique)}
        iterator = query_ids
        if show_progress_bar:
            from tqdm.auto import tqdm

            iterator = tqdm(query_ids, desc=f"e2rank eval {collection.name} ({mode})", unit="query")
        if mode == "embedding":
            query_vectors = model.embed_queries([collection.queries[q] for q in query_ids])
        for position, qid in enumerate(iterator):
            docs = [d for d in candidates[qid] if d in row_of]
            if not docs:
                continue
            matrix = vectors[[row_of[d] for d in docs]]
            if mode == "embedding":
                scores = matrix @ query_vectors[position]
                order = np.argsort(-scores, kind="stable")
                ranking[qid] = [(docs[i], float(scores[i])) for i in order]
            else:
                hits = model.rerank(
                    collection.queries[qid],
                    [collection.corpus[d] for d in docs],
                    document_embeddings=matrix,
                    num_input_docs=num_input_docs,
                )
                ranking[qid] = [(docs[h.index], h.score) for h in hits]
    seconds = time.perf_counter() - start
    qrels = [
        ir_measures.Qrel(q, d, g) for q, judged in collection.qrels.items() if q in query_ids for d, g in judged.items()
    ]
    run = [ir_measures.ScoredDoc(q, d, s) for q, docs in ranking.items() for d, s in docs]
    values = ir_measures.calc_aggregate(parsed, qrels, run)
    return EvalResult(
        collection=collection.name,
        mode=mode,
        model=model.model_name if model is not None else engine_options.model_name() if engine_options else None,
        measures={str(m): float(values[m]) for m in parsed},
        num_queries=len(query_ids),
        depth=depth,
        num_input_docs=None if mode != "listwise" else _prompt_size(num_input_docs, model, engine_options),
        first_stage=source,
        seconds=seconds,
        run=ranking,
    )


def _prompt_size(num_input_docs: int | None, model: E2RankModel | None, options: EngineOptions | None) -> int | None:
    """The prompt size a listwise evaluation used: the one given, else the model's (as the workers loaded it)."""
    if num_input_docs is not None:
        return num_input_docs
    if model is not None:
        return model.num_input_docs
    if options is None:
        return None
    if options.num_input_docs is not None:
        return options.num_input_docs
    from ..model_config import read_stored_settings
    from ..resolve import resolve_model

    return read_stored_settings(resolve_model(options.model_name()).path).num_input_docs


def save_result(result: EvalResult, output_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<collection>.<mode>.trec`` and ``<collection>.<mode>.json`` into ``output_dir``."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{result.collection}.{result.mode}"
    run_path, summary_path = folder / f"{stem}.trec", folder / f"{stem}.json"
    write_run(run_path, result.run, tag=f"e2rank-{result.mode}")
    summary_path.write_text(json.dumps(result.summary(), indent=2) + "\n", encoding="utf-8")
    return run_path, summary_path
