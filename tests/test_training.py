"""E2Rank stage-2 training: losses by hand, the collator against inference, real training steps, the builder."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_data

from e2rank_core import E2RankModel
from e2rank_core.prompts import retrieval_query_text
from e2rank_core.training import (
    E2RankDataCollator,
    E2RankLoss,
    TrainConfig,
    TrainingList,
    anchor_loss,
    build_lists,
    info_nce_loss,
    ranknet_loss,
    read_jsonl,
    teacher_ranking,
    train,
    write_jsonl,
)


def test_info_nce_matches_hand_computation() -> None:
    # two queries, two documents each, 2-d unit vectors: cosines are easy to write down
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # not unit length on purpose: the loss normalises
    documents = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [-1.0, 0.0]]])
    positive = torch.tensor([0, 0])  # query 0 -> doc (0,0); query 1 -> doc (1,0)
    t = 0.03
    cos = [[1.0, 0.0, 0.6, -1.0], [0.0, 1.0, 0.8, 0.0]]
    targets = [0, 2]
    expected = 0.0
    for row, target in zip(cos, targets, strict=True):
        logits = [c / t for c in row]
        top = max(logits)
        expected += -(logits[target] - top - math.log(sum(math.exp(v - top) for v in logits)))
    expected /= 2
    got = info_nce_loss(queries, documents, positive, temperature=t)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # the temperature matters: a warmer softmax gives a different value
    assert info_nce_loss(queries, documents, positive, temperature=1.0).item() != pytest.approx(expected)
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(queries, documents, positive, temperature=0.0)


def test_ranknet_matches_hand_computation_over_all_ordered_pairs() -> None:
    prompt = torch.tensor([[1.0, 0.0]])
    # cosines with the prompt: 1.0, 0.0, -1.0 (docs given in this order)
    documents = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [-2.0, 0.0]]])
    positions = torch.tensor([[1, 0, 2]])  # teacher: doc1 best, then doc0, then doc2
    scale = 10.0
    s = [10.0, 0.0, -10.0]
    pairs = [(1, 0), (1, 2), (0, 2)]  # (better, worse)
    expected = sum(math.log1p(math.exp(-(s[i] - s[j]))) for i, j in pairs) / len(pairs)
    assert ranknet_loss(prompt, documents, positions, scale=scale).item() == pytest.approx(expected, rel=1e-5)

    # 16 documents give 120 pairs, all with the same weight: equal scores -> every pair is log(2)
    flat = torch.ones(1, 16, 4)
    assert ranknet_loss(torch.ones(1, 4), flat, torch.arange(16)[None]).item() == pytest.approx(math.log(2))


def test_anchor_loss_matches_hand_computation() -> None:
    mine = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # lengths differ on purpose: the loss is cosine-based
    base = torch.tensor([[4.0, 3.0], [0.0, -2.0]])
    expected = ((1 - 24 / 25) + (1 - 0.0)) / 2
    assert anchor_loss(mine, base).item() == pytest.approx(expected, rel=1e-6)
    assert anchor_loss(base, base).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="shapes"):
        anchor_loss(mine, base[:1])
    with pytest.raises(ValueError, match="anchor_model"):
        E2RankLoss(torch.nn.Identity(), anchor_factor=1.0)


def test_anchor_keeps_retrieval_embeddings_near_the_base_while_the_prompt_trains(
    tiny_qwen3_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "train.jsonl"
    write_jsonl(_tiny_lists(), data)
    texts = [d for item in _tiny_lists() for d in item.document]
    base = E2RankModel(str(tiny_qwen3_dir), device="cpu", dtype="float32", cache_size=0).embed_documents(texts)

    def drift(anchor_factor: float) -> tuple[float, TrainConfig]:
        config = TrainConfig(
            str(tiny_qwen3_dir), [str(data)], str(tmp_path / f"anchor-{anchor_factor:g}"), batch_size=4, max_steps=4,
            learning_rate=3e-3, warmup_ratio=0.0, save_steps=100, device="cpu", progress_bar=False, embed_factor=0.0,
            anchor_factor=anchor_factor, plain_queries=True,
        )  # fmt: skip
        result = train(config)
        if anchor_factor > 0:
            assert all("anchor" in row for row in result.history)
        trained = E2RankModel(config.output_dir, device="cpu", dtype="float32", cache_size=0)
        assert trained.backend.st_model.prompts["query"] == ""  # plain queries recorded for inference
        vectors = trained.embed_documents(texts)
        return float(np.mean(1.0 - np.sum(vectors * base, axis=1))), config

    free, _ = drift(0.0)
    anchored, config = drift(50.0)
    assert anchored < free / 2  # the same steps move the document space far less with the anchor
    # the frozen copy is not part of the saved model
    saved = E2RankModel(config.output_dir, device="cpu", dtype="float32", cache_size=0).backend.st_model.state_dict()
    assert set(saved) == set(E2RankModel(str(tiny_qwen3_dir), device="cpu").backend.st_model.state_dict())


def test_loss_module_weights_its_parts() -> None:
    loss = E2RankLoss(torch.nn.Identity(), ranknet_factor=2.0)
    assert (loss.embed_factor, loss.ranknet_factor, loss.temperature, loss.ranknet_scale) == (1.0, 2.0, 0.03, 10.0)
    with pytest.raises(ValueError, match="temperature"):
        E2RankLoss(torch.nn.Identity(), temperature=-1)


def test_teacher_ranking_and_jsonl_roundtrip(tmp_path: Path) -> None:
    assert teacher_ranking([0, 2, 1, 2]) == [2, 4, 3, 1]  # grade first, earlier position breaks ties
    assert teacher_ranking([0, 2, 0, 2], [0.1, 0.2, 0.9, 0.5]) == [4, 2, 3, 1]  # grade first, then teacher score
    item = TrainingList("q", ["a", "b", "c"], [3, 1, 2], "unit")
    assert item.teacher_positions() == [1, 2, 0]
    path = tmp_path / "train.jsonl"
    assert write_jsonl([item], path) == 1
    assert read_jsonl(path) == [item]
    path.write_text(json.dumps({"query": "q", "document": ["a", "b"], "ranking": [1, 1]}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="ranking"):
        read_jsonl(path)


def test_collator_feeds_the_same_inputs_as_inference(minilm: E2RankModel) -> None:
    docs = ["Paris is the capital of France.", "Berlin is in Germany.", "Madrid is the capital of Spain."]
    collator = E2RankDataCollator(minilm.backend)
    batch = collator([{"query": "capital of France", "document": docs, "ranking": [1, 3, 2]}])
    assert batch["label"].tolist() == [[0, 2, 1]]
    assert batch["document_input_ids"].shape[0] == 3
    st = minilm.backend.st_model
    with torch.inference_mode():
        prompt = st({k[len("prompt_") :]: v for k, v in batch.items() if k.startswith("prompt_")})
        query = st({k[len("query_") :]: v for k, v in batch.items() if k.startswith("query_")})
        documents = st({k[len("document_") :]: v for k, v in batch.items() if k.startswith("document_")})
    # the vectors a reranker sees at inference time
    expected_prompt = minilm.embed_listwise_prompts(["capital of France"], [docs])[0]
    expected_query = minilm.embed_queries(["capital of France"], plain=False)[0]  # training uses the instruction
    expected_docs = minilm.embed_documents(docs)
    normalise = torch.nn.functional.normalize
    np.testing.assert_allclose(normalise(prompt["sentence_embedding"], dim=-1)[0].numpy(), expected_prompt, atol=1e-5)
    np.testing.assert_allclose(normalise(query["sentence_embedding"], dim=-1)[0].numpy(), expected_query, atol=1e-5)
    np.testing.assert_allclose(normalise(documents["sentence_embedding"], dim=-1).numpy(), expected_docs, atol=1e-5)
    assert retrieval_query_text("capital of France").startswith("Instruct: ")


def _tiny_lists() -> list[TrainingList]:
    topics = {
        "capital of France": ["Paris is the capital of France.", "Lyon is a French city."],
        "largest planet": ["Jupiter is the largest planet.", "Mars is a red planet."],
        "python language": ["Python is a programming language.", "A python is a snake."],
        "boiling point of water": ["Water boils at 100 degrees Celsius.", "Ice melts at 0 degrees."],
    }
    fillers = [f"Unrelated note number {i} about gardening and weather." for i in range(6)]
    lists = []
    for query, (best, second) in topics.items():
        docs = [second, *fillers[:3], best, *fillers[3:]]  # the best document is not first in the prompt
        grades = [1, 0, 0, 0, 2, 0, 0, 0]
        lists.append(TrainingList(query, docs, teacher_ranking(grades), "unit"))
    return lists


def test_training_steps_lower_the_loss_change_weights_and_save_a_loadable_model(
    tiny_qwen3_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "train.jsonl"
    write_jsonl(_tiny_lists(), data)
    model = E2RankModel(str(tiny_qwen3_dir), device="cpu", dtype="float32", cache_size=0)
    collator = E2RankDataCollator(model.backend)
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    batch = collator(rows)

    def loss_of(st_model: torch.nn.Module) -> float:
        features = [
            {k[len(p) + 1 :]: v for k, v in batch.items() if k.startswith(p + "_")}
            for p in ("query", "prompt", "document")
        ]
        with torch.no_grad():
            parts = E2RankLoss(st_model)(features, batch["label"])
        return float(sum(parts.values()))

    before = loss_of(model.backend.st_model.eval())
    weights_before = {k: v.clone() for k, v in model.backend.st_model.state_dict().items()}

    out = tmp_path / "trained"
    config = TrainConfig(
        str(tiny_qwen3_dir), [str(data)], str(out), batch_size=4, max_steps=4, learning_rate=3e-3,
        warmup_ratio=0.0, save_steps=4, device="cpu", progress_bar=False,
    )  # fmt: skip
    result = train(config)
    assert result.steps == 4
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    assert (out / "training" / "loss_curve.png").stat().st_size > 0
    assert {"loss", "infonce", "ranknet"} <= set(result.history[0])

    trained = E2RankModel(str(out), device="cpu", dtype="float32", cache_size=0)
    after = loss_of(trained.backend.st_model.eval())
    assert after < before
    changed = [k for k, v in trained.backend.st_model.state_dict().items() if not torch.equal(v, weights_before[k])]
    assert changed

    hits = trained.rerank("capital of France", ["Lyon is a French city.", "Paris is the capital of France."])
    assert sorted(h.index for h in hits) == [0, 1]
    assert all(-1.0 <= h.score <= 1.0 for h in hits)

    # plain sentence-transformers loads the same folder
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(out), device="cpu").encode(["hello"]).shape == (1, trained.dimension)

    # resume: a second run with a higher step budget starts from checkpoint-4, not from scratch
    with caplog.at_level(logging.WARNING, logger="e2rank.training"):
        resumed = train(TrainConfig(**{**config.__dict__, "max_steps": 5}))
    assert "checkpoint-4" in caplog.text
    assert resumed.steps == 5
    assert resumed.history[:4] == result.history  # steps 1-4 come from the checkpoint's state
    recorded = json.loads((out / "training" / "train_config.json").read_text())
    first_run = json.loads((out / "checkpoints" / "checkpoint-4" / "e2rank_elapsed.json").read_text())["seconds"]
    assert recorded["resumed_from"] == "checkpoint-4"
    assert recorded["seconds"] >= first_run > 0  # the whole training time, not only the resumed part


def test_time_budget_stops_training_early_and_still_saves_the_model(
    tiny_qwen3_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "train.jsonl"
    write_jsonl(_tiny_lists(), data)
    out = tmp_path / "budget"
    config = TrainConfig(
        str(tiny_qwen3_dir), [str(data)], str(out), batch_size=4, max_steps=50, max_seconds=1e-3,
        save_steps=100, device="cpu", progress_bar=False,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="e2rank.training"):
        result = train(config)
    assert result.steps == 1  # the budget is checked after each optimizer step
    assert "time budget" in caplog.text
    assert E2RankModel(str(out), device="cpu").rerank("q", ["a", "b"])
    with pytest.raises(ValueError, match="max_seconds"):
        train(TrainConfig(**{**config.__dict__, "max_seconds": 0}))


def test_shipped_model_loads_in_float32_in_e2rank_and_plain_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    from e2rank_core.resolve import resolve_model

    folder = Path(__file__).resolve().parents[1] / "e2rank_core" / "models" / "minilm-l6-e2rank"
    if not (folder / "model.safetensors").is_file():
        pytest.skip("no trained model is shipped in e2rank_core/models/minilm-l6-e2rank")
    assert resolve_model("e2rank/minilm-l6-e2rank").path == str(folder)
    ours = E2RankModel("e2rank/minilm-l6-e2rank", device="cpu")
    plain = SentenceTransformer(str(folder), device="cpu")
    assert next(ours.backend.st_model.parameters()).dtype == torch.float32
    assert next(plain.parameters()).dtype == torch.float32
    text = ["Paris is the capital of France."]
    np.testing.assert_allclose(plain.encode(text, normalize_embeddings=True), ours.embed_documents(text), atol=1e-5)
    hits = ours.rerank("capital of France", ["Berlin is in Germany.", "Paris is the capital of France."])
    assert hits[0].index == 1


@pytest.mark.slow
def test_builder_on_trec_dl_2021(tmp_path: Path) -> None:
    from e2rank_core.cli import main
    from e2rank_core.evaluation.data import load_beir, read_run

    folder = require_data("trec-dl-2021")
    lists = build_lists(folder, lists_per_query=2, seed=1)
    collection = load_beir(folder, "train")
    run = read_run(folder / "bm25_top100.trec", 100)
    text_to_id = {v: k for k, v in collection.corpus.items()}
    duplicated = {t for t, n in Counter(collection.corpus.values()).items() if n > 1}  # MS MARCO v2 has copies
    query_to_id = {v: k for k, v in collection.queries.items()}
    assert len(lists) >= 2 * 40
    checked = [item for item in lists if not duplicated & set(item.document)][:20]
    assert len(checked) >= 10
    for item in checked:
        qid = query_to_id[item.query]
        grades = [collection.qrels[qid].get(text_to_id[d], 0) for d in item.document]
        assert len(item.document) == 16 and sorted(item.ranking) == list(range(1, 17))
        assert grades[item.ranking[0] - 1] == max(grades) > 0  # the teacher's top is judged relevant
        ordered = [grades[i - 1] for i in item.ranking]
        assert ordered == sorted(ordered, reverse=True)
        assert 0 in grades  # relevant documents are mixed with negatives
        ranks = [run[qid].index(text_to_id[d]) for d in item.document if text_to_id[d] in run[qid]]
        assert ranks == sorted(ranks)  # documents keep first-stage order

    out = tmp_path / "dl21.jsonl"
    assert main(["build-train-data", "--data", str(folder), "--output", str(out)]) == 0
    assert len(read_jsonl(out)) == len(build_lists(folder))


def _small_beir_copy(source: Path, target: Path, n_queries: int = 3, depth: int = 30) -> Path:
    """A real but small BEIR folder: the first judged queries of ``source``, their first-stage top ``depth`` and
    judged documents, with qrels/train.tsv and the cut run."""
    from e2rank_core.evaluation.data import load_beir, read_run

    collection = load_beir(source, "train")
    run = read_run(source / "bm25_top100.trec", depth)
    qids = [q for q in sorted(collection.queries) if q in run][:n_queries]
    wanted = {d for q in qids for d in run[q]} | {d for q in qids for d in collection.qrels[q]}
    first_id_of_text: dict[str, str] = {}
    for doc_id in sorted(wanted & set(collection.corpus)):
        first_id_of_text.setdefault(collection.corpus[doc_id], doc_id)
    keep = set(first_id_of_text.values())  # MS MARCO v2 repeats some passages: keep one id per text
    target.mkdir(parents=True)
    (target / "qrels").mkdir()
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id in sorted(keep & set(collection.corpus)):
            handle.write(json.dumps({"_id": doc_id, "title": "", "text": collection.corpus[doc_id]}) + "\n")
    with (target / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for qid in qids:
            handle.write(json.dumps({"_id": qid, "text": collection.queries[qid]}) + "\n")
    lines = [f"{q}\t{d}\t{g}" for q in qids for d, g in collection.qrels[q].items() if d in keep]
    (target / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n")
    with (target / "bm25_top100.trec").open("w", encoding="utf-8") as handle:
        for qid in qids:
            for rank, doc_id in enumerate([d for d in run[qid] if d in keep], start=1):
                handle.write(f"{qid} Q0 {doc_id} {rank} {100 - rank} bm25\n")
    return target


def test_builder_with_a_teacher_model_breaks_ties_by_its_cosine_and_ranks_unlabeled_lists(
    tmp_path: Path, minilm: E2RankModel
) -> None:
    from e2rank_core.evaluation.data import load_beir

    folder = _small_beir_copy(require_data("trec-dl-2021"), tmp_path / "dl21-small")
    collection = load_beir(folder, "train")
    query_to_id = {v: k for k, v in collection.queries.items()}
    text_to_id = {v: k for k, v in collection.corpus.items()}

    def cosine(query: str, documents: list[str]) -> np.ndarray:
        return minilm.embed_documents(documents) @ minilm.embed_queries([query])[0]

    labeled = build_lists(folder, depth=30, teacher=minilm)
    assert len(labeled) >= 2  # a query with under 15 unjudged-or-irrelevant candidates gets no list
    for item in labeled:
        qrels = collection.qrels[query_to_id[item.query]]
        grades = [qrels.get(text_to_id[d], 0) for d in item.document]
        scores = cosine(item.query, item.document)
        ordered = [(grades[i - 1], scores[i - 1]) for i in item.ranking]
        assert [g for g, _ in ordered] == sorted((g for g, _ in ordered), reverse=True)  # grade first
        for (g1, s1), (g2, s2) in pairwise(ordered):
            if g1 == g2:
                assert s1 >= s2 - 1e-5  # ties: the teacher's cosine, best first
    assert [item.ranking for item in labeled] != [item.ranking for item in build_lists(folder, depth=30)]

    unlabeled = build_lists(folder, split=None, depth=30, lists_per_query=2, teacher=minilm, seed=3)
    assert len(unlabeled) == 6
    for item in unlabeled:
        scores = cosine(item.query, item.document)
        assert [int(i) + 1 for i in np.argsort(-scores, kind="stable")] == item.ranking
    with pytest.raises(ValueError, match="teacher"):
        build_lists(folder, split=None)
