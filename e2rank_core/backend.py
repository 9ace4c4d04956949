"""Model loading, tokenisation and forward passes: everything that touches torch lives here.

Two families are supported, decided by :func:`is_decoder_family` alone:

* decoder embedders (Qwen3 / E2Rank, Llama, SmolLM2...): last-token pooling, left padding, the E2Rank EOS
  appended to documents and retrieval queries, none after the listwise prompt, which goes through the
  tokenizer's chat template;
* encoder embedders (BERT-like sentence-transformers models): their own pooling, their own [CLS]/[SEP]
  wrapping, right padding, no EOS, the plain prompt content.

Text written by users is always tokenised with ``split_special_tokens=True``: ``<|endoftext|>``,
``<|im_start|>`` or ``[SEP]`` inside a query or document are plain characters, never control tokens.
Only the chat-template scaffolding and the appended EOS are real special tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .prompts import cut_to_words, listwise_prompt_content, listwise_prompt_parts
from .resolve import ResolvedModel
from .scoring import l2_normalize

logger = logging.getLogger("e2rank")

#: E2Rank's tokenizer does not add EOS; the official code appends this literal to documents and queries.
E2RANK_EOS = "<|endoftext|>"

_TEMPLATE_SENTINEL = "\x00E2RANK-CONTENT\x00"

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``None``/``"auto"`` keeps the checkpoint's dtype (float32 for GGUF); strings name a torch dtype."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return None
    try:
        return _DTYPES[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(set(_DTYPES))} or 'auto', got {dtype!r}") from None


def resolve_device(device: str | torch.device | None) -> str:
    """``None``/``"auto"`` picks cuda, then mps, then cpu."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    name = str(device)
    if name.split(":")[0] not in {"cpu", "cuda", "mps", "xpu", "npu", "hpu"}:
        raise ValueError(f"device must be 'cpu', 'cuda[:N]', 'mps' or 'auto', got {device!r}")
    return name


def is_decoder_family(model_type: str) -> bool:
    """The one rule that separates decoder embedders from encoder embedders.

    A decoder is a model type that has a causal-LM head class and no masked-LM head class in transformers
    (BERT and RoBERTa have both, so they stay encoders; Qwen3, Llama, Mistral have only the causal one).
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def fit_documents_to_budget(document_lengths: Sequence[int], budget: int) -> int | None:
    """The truncation policy of the listwise prompt, in one place.

    Returns the largest per-document token cap ``c`` such that ``sum(min(n, c)) <= budget`` (documents
    shorter than their share keep every token and leave the rest to the longer ones), or ``None`` when
    everything already fits. Deterministic, and every document keeps a place in the prompt.
    """
    if sum(document_lengths) <= budget:
        return None
    if budget <= 0 or not document_lengths:
        return 0
    low, high = 0, max(document_lengths)
    while low < high:  # largest cap whose total fits
        mid = (low + high + 1) // 2
        if sum(min(n, mid) for n in document_lengths) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


@dataclass(frozen=True, slots=True)
class EncodedInput:
    """Token ids ready for a forward pass, plus the text they encode (after any truncation)."""

    input_ids: list[int]
    text: str
    truncated: bool


class EmbeddingBackend:
    """A sentence-transformers model plus the tokenisation rules of its family.

    Built by :class:`~e2rank_core.E2RankModel`; not meant to be used directly.
    """

    def __init__(
        self,
        resolved: ResolvedModel,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        token: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        max_document_tokens: int | None = None,
        max_query_tokens: int = 512,
        max_prompt_tokens: int | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers import AutoConfig

        self.resolved = resolved
        self.device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype)
        if torch_dtype is None and self.device == "cpu":
            torch_dtype = torch.float32  # half-precision checkpoints are slow and lossy on CPUs
        model_kwargs = dict(model_kwargs or {})
        processor_kwargs = dict(tokenizer_kwargs or {})
        config_kwargs: dict[str, Any] = {}
        if torch_dtype is not None:
            model_kwargs["dtype"] = torch_dtype
        if resolved.gguf_file:
            for kwargs in (model_kwargs, processor_kwargs, config_kwargs):
                kwargs["gguf_file"] = resolved.gguf_file
        common: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if token:
            common["token"] = token

        config = AutoConfig.from_pretrained(resolved.path, **config_kwargs, **common)
        self.model_type: str = config.model_type
        self.is_decoder = is_decoder_family(config.model_type)

        if self.is_decoder:
            # Always last-token pooling + normalisation, whatever pooling a folder's ST config may claim.
            from sentence_transformers.base.modules import Normalize, Transformer
            from sentence_transformers.sentence_transformer.modules import Pooling

            transformer = Transformer(
                resolved.path,
                model_kwargs={**model_kwargs, **common},
                processor_kwargs={**processor_kwargs, **common},
                config_kwargs={**config_kwargs, **common},
            )
            pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="lasttoken")
            self.st_model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device=self.device)
        else:
            self.st_model = SentenceTransformer(
                resolved.path,
                device=self.device,
                model_kwargs=model_kwargs or None,
                processor_kwargs=processor_kwargs or None,
                config_kwargs=config_kwargs or None,
                **common,
            )
        self.st_model.eval()
        self.tokenizer = self.st_model.tokenizer
        if self.tokenizer is None:
            raise ValueError(f"model {resolved.name!r} has no text tokenizer")
        self.dimension: int = int(self.st_model.get_embedding_dimension())

        position_limit = int(getattr(config, "max_position_embeddings", 0) or 0) or 512
        if self.is_decoder:
            self.eos_id = self._eos_token_id()
            self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id
            default_doc = min(position_limit, 8192)  # the E2Rank README's max_length
            self.template_affixes = self._chat_template_affixes()
        else:
            self.eos_id = None
            self.pad_id = self.tokenizer.pad_token_id or 0
            # Documents follow the model's own sentence-transformers limit, so embeddings equal ST's encode().
            default_doc = int(self.st_model.max_seq_length or position_limit)
            self.template_affixes = None
        self.position_limit = position_limit
        self.max_document_tokens = int(max_document_tokens or default_doc)
        self.max_query_tokens = int(max_query_tokens)
        self.max_prompt_tokens = int(max_prompt_tokens or min(position_limit, 32768))
        for name in ("max_document_tokens", "max_query_tokens", "max_prompt_tokens"):
            if getattr(self, name) < 4:
                raise ValueError(f"{name} must be at least 4, got {getattr(self, name)}")
        self._warned: set[str] = set()
        self._special_affixes = self._find_special_affixes()
        prefix, suffix = self.template_affixes or ("", "")
        self._affix_ids = (self._template_ids(prefix), self._template_ids(suffix))  # chat-template scaffolding

    # ----------------------------------------------------------------------------------------- tokens
    def _eos_token_id(self) -> int:
        vocab = self.tokenizer.get_vocab()
        if E2RANK_EOS in vocab:
            return int(vocab[E2RANK_EOS])
        if self.tokenizer.eos_token_id is None:
            raise ValueError(f"decoder model {self.resolved.name!r} has no EOS token to pool on")
        return int(self.tokenizer.eos_token_id)

    def _chat_template_affixes(self) -> tuple[str, str] | None:
        if not getattr(self.tokenizer, "chat_template", None):
            return None
        rendered = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": _TEMPLATE_SENTINEL}],
            add_generation_prompt=True,
            enable_thinking=False,
            tokenize=False,
        )
        prefix, found, suffix = str(rendered).partition(_TEMPLATE_SENTINEL)
        if not found:
            raise ValueError("the chat template does not place the user message verbatim in the prompt")
        return prefix, suffix

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(message)

    def plain_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """User text to ids, special-token strings split into ordinary tokens, nothing added."""
        if not texts:
            return []
        # verbose=False: over-long texts are expected here; the truncation policy handles them
        encoded = self.tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True, verbose=False)
        return [list(ids) for ids in encoded["input_ids"]]

    def _template_ids(self, text: str) -> list[int]:
        """Chat-template scaffolding: here special-token strings are real special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]) if text else []

    def truncate_text(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """Cut ``text`` after its first ``max_tokens`` tokens, on a character boundary."""
        if max_tokens <= 0:
            return "", bool(text)
        encoded = self.tokenizer(
            text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True, verbose=False
        )
        offsets = encoded["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text, False
        return text[: offsets[max_tokens - 1][1]], True

    def encode_texts(self, texts: Sequence[str], *, kind: str) -> list[EncodedInput]:
        """Documents or retrieval queries (already formatted) to model inputs, truncated to the token budget."""
        limit = self.max_document_tokens if kind == "document" else min(self.max_document_tokens, self.max_query_tokens)
        cut = [cut_to_words(t) for t in texts] if kind == "document" else list(texts)
        results: list[EncodedInput] = []
        for text, ids in zip(cut, self.plain_ids(cut), strict=True):
            if self.is_decoder:
                # The tokenizer's own leading specials (a BOS, if any), the text, then the E2Rank EOS.
                bos = self._special_affixes[0]
                body_limit = limit - len(bos) - 1
                truncated = len(ids) > body_limit
                results.append(EncodedInput([*bos, *ids[:body_limit], self.eos_id], text, truncated))  # type: ignore[list-item]
            else:
                body_limit = limit - self._encoder_special_count()
                truncated = len(ids) > body_limit
                results.append(EncodedInput(self._wrap_encoder(ids[:body_limit]), text, truncated))
        if any(r.truncated for r in results):
            self._warn_once(
                kind,
                f"e2rank: some {kind} texts are longer than {limit} tokens and were truncated to their first "
                f"{limit} tokens (set max_document_tokens / max_query_tokens to change this).",
            )
        return results

    def _encoder_special_count(self) -> int:
        prefix, suffix = self._special_affixes
        return len(prefix) + len(suffix)

    def _wrap_encoder(self, ids: list[int]) -> list[int]:
        prefix, suffix = self._special_affixes
        return [*prefix, *ids, *suffix]

    def _find_special_affixes(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer adds around any text (e.g. [CLS] ... [SEP]), found by encoding a probe."""
        probe = "e2rank probe"
        bare = list(self.tokenizer(probe, add_special_tokens=False)["input_ids"])
        full = list(self.tokenizer(probe, add_special_tokens=True)["input_ids"])
        for start in range(len(full) - len(bare) + 1):
            if full[start : start + len(bare)] == bare:
                return full[:start], full[start + len(bare) :]
        raise ValueError("cannot tell which special tokens the tokenizer adds around a text")

    # ----------------------------------------------------------------------------------------- prompt
    def encode_prompt(self, query: str, documents: Sequence[str]) -> EncodedInput:
        """The listwise prompt, fitted to ``max_prompt_tokens`` by shortening documents evenly."""
        documents = [cut_to_words(d) for d in documents]
        query_ids = self.plain_ids([query])[0]
        query_truncated = len(query_ids) > self.max_query_tokens
        if query_truncated:
            query, _ = self.truncate_text(query, self.max_query_tokens)

        prefix, suffix = self.template_affixes or ("", "")
        head, numbered, tail = listwise_prompt_parts(query, [""] * len(documents))
        fixed = (
            len(self._affix_ids[0])
            + len(self._affix_ids[1])
            + len(self.plain_ids([head + "\n".join(numbered) + tail])[0])
        )
        if not self.is_decoder:
            fixed += self._encoder_special_count()
        # One batched call gives every document's length and the character offsets to cut it at.
        offsets = (
            self.tokenizer(
                documents,
                add_special_tokens=False,
                split_special_tokens=True,
                return_offsets_mapping=True,
                verbose=False,
            )["offset_mapping"]
            if documents
            else []
        )
        doc_lengths = [len(o) for o in offsets]

        def cut(text: str, spans: list[tuple[int, int]], cap: int) -> str:
            return text if len(spans) <= cap else (text[: spans[cap - 1][1]] if cap > 0 else "")

        budget = self.max_prompt_tokens - fixed
        slack = 0
        truncated_docs = False
        for _ in range(8):  # piecewise and joint tokenisation can differ by a few tokens at the seams
            cap = fit_documents_to_budget(doc_lengths, budget - slack)
            fitted = documents if cap is None else [cut(d, o, cap) for d, o in zip(documents, offsets, strict=True)]
            truncated_docs = cap is not None
            encoded = self._prompt_ids(query, fitted)
            overflow = len(encoded) - self.max_prompt_tokens
            if overflow <= 0:
                break
            slack += overflow
        else:
            encoded = encoded[: self.max_prompt_tokens]
        if truncated_docs or query_truncated:
            self._warn_once(
                "prompt",
                f"e2rank: the listwise prompt exceeded {self.max_prompt_tokens} tokens; documents inside the prompt "
                "were shortened to an equal token share so that all of them still appear "
                "(set max_prompt_tokens to change this).",
            )
        text = prefix + listwise_prompt_content(query, fitted) + suffix
        return EncodedInput(encoded, text, truncated_docs or query_truncated)

    def _prompt_ids(self, query: str, documents: Sequence[str]) -> list[int]:
        content_ids = self.plain_ids([listwise_prompt_content(query, documents)])[0]
        if self.is_decoder:
            return self._affix_ids[0] + content_ids + self._affix_ids[1]
        return self._wrap_encoder(content_ids)

    # ----------------------------------------------------------------------------------------- forward
    @torch.inference_mode()
    def embed_ids(
        self, sequences: Sequence[Sequence[int]], *, batch_size: int = 32, show_progress_bar: bool = False
    ) -> np.ndarray:
        """Forward passes over token ids, length-sorted batches, L2-normalised float32 output."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(sequences), self.dimension), dtype=np.float32)
        if not sequences:
            return out
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        iterator: Any = batches
        if show_progress_bar:
            from tqdm.auto import tqdm

            iterator = tqdm(batches, desc="e2rank: embedding", unit="batch")
        for batch in iterator:
            features = self.pad_batch([sequences[i] for i in batch])
            embeddings = self.st_model(features)["sentence_embedding"]
            out[batch] = embeddings.float().cpu().numpy()
        return l2_normalize(out)

    def pad_batch(self, sequences: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), int(self.pad_id), dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            n = len(seq)
            if self.is_decoder:  # left padding: the pooled last token sits at position -1
                ids[row, width - n :] = torch.tensor(seq, dtype=torch.long)
                mask[row, width - n :] = 1
            else:
                ids[row, :n] = torch.tensor(seq, dtype=torch.long)
                mask[row, :n] = 1
        features = {"input_ids": ids, "attention_mask": mask}
        if not self.is_decoder and "token_type_ids" in getattr(self.tokenizer, "model_input_names", []):
            features["token_type_ids"] = torch.zeros_like(ids)
        return {k: v.to(self.st_model.device) for k, v in features.items()}
