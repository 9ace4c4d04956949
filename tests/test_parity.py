"""Parity with an independent reference written here from the method description (shared/docs/method.md).

The reference uses plain ``transformers`` only: the eval.py prompt string through the chat template, documents as
text + ``<|endoftext|>``, left padding, the last token's hidden state, L2 normalisation, dot product.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from e2rank_core import E2RankModel

QUERY = "what is the boiling point of water at high altitude"
DOCUMENTS = [
    "At higher altitudes the air pressure is lower, so water boils at a lower temperature.",
    "The Eiffel Tower is about 330 metres tall.",
    "Pressure cookers raise the boiling point of water by increasing pressure.",
    "Mount Everest's summit is 8,849 metres above sea level; water boils there near 70 °C.",
    "Penguins live mostly in the Southern Hemisphere.",
    "Boiling point depends on ambient pressure.\nIt is 100 °C at sea level.",
]


def reference_prompt(tokenizer, query: str, documents: list[str]) -> str:
    docs = "\n".join(f"[{i}] {d}" for i, d in enumerate(documents, start=1))
    content = (
        "Given a web search query and some relevant documents, rerank the documents that answer the query:\n"
        f"Documents:\n{docs}\nSearch Query: {query}"
    )
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, enable_thinking=False, tokenize=False
    )


@torch.inference_mode()
def reference_embed(model, tokenizer, texts: list[str]) -> np.ndarray:
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>"
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    hidden = model(**batch).last_hidden_state[:, -1]
    return torch.nn.functional.normalize(hidden.float(), p=2, dim=-1).numpy()


def reference_scores(model, tokenizer, query: str, documents: list[str]) -> tuple[str, np.ndarray]:
    prompt = reference_prompt(tokenizer, query, documents[:20])
    prompt_vec = reference_embed(model, tokenizer, [prompt])[0]
    doc_vecs = reference_embed(model, tokenizer, [d + "<|endoftext|>" for d in documents])
    return prompt, doc_vecs @ prompt_vec


def _load_reference(path: str, gguf_file: str | None, weights_of: E2RankModel | None = None):
    """Plain ``transformers`` model and tokenizer; ``weights_of`` copies that model's loaded weights instead.

    A GGUF file is de-quantised by the same ``transformers`` code for both sides, which takes most of a minute on a
    small CPU, so for it the reference is built fresh from the config and given a copy of the already de-quantised
    weights: what parity checks (prompt, token ids, pooling, normalisation, scoring) stays independent.
    """
    from transformers import AutoModel, AutoTokenizer

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    if weights_of is None:
        return AutoModel.from_pretrained(path, dtype=torch.float32, **kwargs).eval(), tokenizer
    loaded = weights_of.backend.st_model[0].auto_model
    model = AutoModel.from_config(loaded.config, dtype=torch.float32).eval()
    missing, unexpected = model.load_state_dict({k: v.clone() for k, v in loaded.state_dict().items()}, strict=False)
    assert not unexpected and all("rotary" in name for name in missing), (missing, unexpected)
    return model, tokenizer


def _check_parity(e2rank: E2RankModel, path: str, gguf_file: str | None) -> None:
    model, tokenizer = _load_reference(path, gguf_file, weights_of=e2rank if gguf_file else None)
    ref_prompt, ref_scores = reference_scores(model, tokenizer, QUERY, DOCUMENTS)

    assert e2rank.build_listwise_prompt(QUERY, DOCUMENTS) == ref_prompt
    # The token ids too: the prompt must not gain an EOS, documents must end with exactly one.
    ours = e2rank.backend.encode_prompt(QUERY, DOCUMENTS).input_ids
    assert ours == tokenizer(ref_prompt, add_special_tokens=False)["input_ids"]
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert ours[-1] != eos
    doc_ids = e2rank.backend.encode_texts(DOCUMENTS, kind="document")
    for doc, encoded in zip(DOCUMENTS, doc_ids, strict=True):
        assert encoded.input_ids == tokenizer(doc + "<|endoftext|>")["input_ids"]

    results = e2rank.rerank(QUERY, DOCUMENTS)
    scores = np.array([r.score for r in sorted(results, key=lambda r: r.index)])
    assert np.max(np.abs(scores - ref_scores)) < 1e-5
    assert [r.index for r in results] == list(np.argsort(-ref_scores, kind="stable"))


def test_parity_tiny_qwen3(tiny_qwen3: E2RankModel, tiny_qwen3_dir: Path) -> None:
    prompt = tiny_qwen3.build_listwise_prompt(QUERY, DOCUMENTS)
    assert prompt.startswith("<|im_start|>user\nGiven a web search query and some relevant documents")
    assert prompt.endswith(f"\nSearch Query: {QUERY}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    _check_parity(tiny_qwen3, str(tiny_qwen3_dir), None)


def test_parity_packaged_smollm2(smollm: E2RankModel) -> None:
    resolved = smollm.backend.resolved
    assert resolved.source == "packaged" and resolved.gguf_file
    assert smollm.is_decoder
    _check_parity(smollm, resolved.path, resolved.gguf_file)


def test_parity_retrieval_query_qwen3(tiny_qwen3: E2RankModel, tiny_qwen3_dir: Path) -> None:
    model, tokenizer = _load_reference(str(tiny_qwen3_dir), None)
    text = f"Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:{QUERY}"
    ref = reference_embed(model, tokenizer, [text + "<|endoftext|>"])[0]
    ours = tiny_qwen3.embed_queries([QUERY])[0]
    assert np.max(np.abs(ours - ref)) < 1e-5


def test_encoder_matches_sentence_transformers(minilm: E2RankModel) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(minilm.backend.resolved.path, device="cpu")
    expected = reference.encode(DOCUMENTS, normalize_embeddings=True, convert_to_numpy=True)
    ours = minilm.embed_documents(DOCUMENTS)
    assert ours.dtype == np.float32 and ours.shape == (len(DOCUMENTS), 384)
    assert np.max(np.abs(ours - expected)) < 1e-5
    assert not minilm.is_decoder
    # The encoder prompt is the plain content (no chat template) wrapped in [CLS] ... [SEP].
    prompt = minilm.build_listwise_prompt(QUERY, DOCUMENTS)
    assert prompt.startswith("Given a web search query") and prompt.endswith(f"Search Query: {QUERY}")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_close_to_float32(tiny_qwen3_dir: Path, tiny_qwen3: E2RankModel, dtype: str) -> None:
    low = E2RankModel(str(tiny_qwen3_dir), device="cpu", dtype=dtype)
    assert str(low.backend.st_model.dtype) == f"torch.{dtype}"
    full = [r.score for r in sorted(tiny_qwen3.rerank(QUERY, DOCUMENTS), key=lambda r: r.index)]
    reduced = [r.score for r in sorted(low.rerank(QUERY, DOCUMENTS), key=lambda r: r.index)]
    assert np.max(np.abs(np.array(full) - np.array(reduced))) < 0.05
