"""The two model families, each an object that owns its token layout: wrapping, EOS, padding side, chat template.

* :class:`DecoderFamily` (Qwen3 / E2Rank, Llama, SmolLM2...): last-token pooling, left padding, the tokenizer's own
  leading specials (a BOS, if any) + text + the E2Rank EOS for documents and retrieval queries; the listwise prompt
  goes through the chat template (generation prompt on, thinking off) and gets no EOS.
* :class:`EncoderFamily` (BERT-like sentence-transformers models): the tokenizer's own wrapping (``[CLS] ... [SEP]``)
  around every text, prompt included, right padding, the model's own pooling.

Which family a checkpoint belongs to is decided once, by :func:`is_decoder_family`; nothing else branches on it.
"""

from __future__ import annotations

from typing import Any

#: E2Rank's tokenizer does not add EOS; the official code appends this literal to documents and queries.
E2RANK_EOS = "<|endoftext|>"

_TEMPLATE_SENTINEL = "\x00E2RANK-CONTENT\x00"


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


def _special_affixes(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer adds around any text (e.g. [CLS] ... [SEP]), found by encoding a probe."""
    probe = "e2rank probe"
    bare = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    raise ValueError("cannot tell which special tokens the tokenizer adds around a text")


def _scaffolding_ids(tokenizer: Any, text: str) -> list[int]:
    """Chat-template scaffolding: here special-token strings are real special tokens."""
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]) if text else []


class EncoderFamily:
    """Token layout of encoder embedders: the tokenizer's own specials around every text, right padding."""

    is_decoder = False
    padding_side = "right"

    def __init__(self, tokenizer: Any, model_name: str) -> None:
        self.tokenizer = tokenizer
        self.text_prefix, self.text_suffix = _special_affixes(tokenizer)
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.prompt_prefix_text = self.prompt_suffix_text = ""  # no chat template around the prompt
        self.prompt_prefix, self.prompt_suffix = self.text_prefix, self.text_suffix
        self.uses_token_type_ids = "token_type_ids" in getattr(tokenizer, "model_input_names", [])

    @property
    def text_overhead(self) -> int:
        """Tokens a document or query gets besides its own."""
        return len(self.text_prefix) + len(self.text_suffix)

    @property
    def prompt_overhead(self) -> int:
        """Tokens the listwise prompt gets besides its content."""
        return len(self.prompt_prefix) + len(self.prompt_suffix)

    def wrap_text(self, ids: list[int]) -> list[int]:
        return [*self.text_prefix, *ids, *self.text_suffix]

    def wrap_prompt(self, content_ids: list[int]) -> list[int]:
        return [*self.prompt_prefix, *content_ids, *self.prompt_suffix]

    def prompt_text(self, content: str) -> str:
        """The prompt as text, scaffolding included (what :meth:`wrap_prompt` encodes)."""
        return self.prompt_prefix_text + content + self.prompt_suffix_text


class DecoderFamily(EncoderFamily):
    """Token layout of decoder embedders: BOS (if any) + text + E2Rank EOS, chat-templated prompt, left padding."""

    is_decoder = True
    padding_side = "left"  # the pooled last token sits at position -1 of every row

    def __init__(self, tokenizer: Any, model_name: str) -> None:
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        if E2RANK_EOS in vocab:
            self.eos_id = int(vocab[E2RANK_EOS])
        elif tokenizer.eos_token_id is not None:
            self.eos_id = int(tokenizer.eos_token_id)
        else:
            raise ValueError(f"decoder model {model_name!r} has no EOS token to pool on")
        self.pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else self.eos_id
        bos, _ = _special_affixes(tokenizer)
        self.text_prefix, self.text_suffix = bos, [self.eos_id]
        self.prompt_prefix_text, self.prompt_suffix_text = self._chat_template_affixes()
        self.prompt_prefix = _scaffolding_ids(tokenizer, self.prompt_prefix_text)
        self.prompt_suffix = _scaffolding_ids(tokenizer, self.prompt_suffix_text)
        self.uses_token_type_ids = False

    def _chat_template_affixes(self) -> tuple[str, str]:
        if not getattr(self.tokenizer, "chat_template", None):
            return "", ""
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


ModelFamily = EncoderFamily | DecoderFamily


def family_for(model_type: str, tokenizer: Any, model_name: str) -> ModelFamily:
    """The family object of a checkpoint of this ``model_type``."""
    cls = DecoderFamily if is_decoder_family(model_type) else EncoderFamily
    return cls(tokenizer, model_name)
