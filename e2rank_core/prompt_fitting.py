"""The truncation policy of the listwise prompt, in one place.

The prompt must fit ``max_prompt_tokens`` with every candidate in it and the template's closing tokens intact. The
budget is shared in this order:

1. the template (instruction, numbering, ``Search Query:``, chat scaffolding or ``[CLS]``/``[SEP]``) always fits;
2. the query keeps at most ``max_query_tokens`` and at most half of what is left after the template, so a long query
   can never crowd the documents out;
3. the documents share the rest: each keeps ``min(its length, cap)`` tokens with the largest ``cap`` that fits
   (:func:`fit_documents_to_budget`), so short documents stay whole and long ones are cut equally.

Texts are cut on character boundaries, and the returned text is exactly the text whose ids are returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .prompts import cut_to_words, listwise_prompt_content, listwise_prompt_parts


def fit_documents_to_budget(document_lengths: Sequence[int], budget: int) -> int | None:
    """The largest per-document token cap ``c`` with ``sum(min(n, c)) <= budget``; ``None`` when all fits already.

    Documents shorter than their share keep every token and leave the rest to the longer ones. Deterministic, and
    every document keeps a place in the prompt (with ``budget <= 0`` the cap is 0: an empty ``[i]`` entry).
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
class TokenizedText:
    """A user text and the character end of each of its tokens (for cutting after token ``k``)."""

    text: str
    token_ends: list[int]

    def __len__(self) -> int:
        return len(self.token_ends)

    def cut(self, max_tokens: int | None) -> str:
        if max_tokens is None or len(self.token_ends) <= max_tokens:
            return self.text
        return self.text[: self.token_ends[max_tokens - 1]] if max_tokens > 0 else ""

    def cut_start(self, max_tokens: int) -> str:
        """The text of its last ``max_tokens`` tokens (from the end of the last token dropped)."""
        if len(self.token_ends) <= max_tokens:
            return self.text
        return self.text[self.token_ends[len(self.token_ends) - max_tokens - 1] :] if max_tokens > 0 else ""


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    """The listwise prompt content after fitting, and whether anything was cut."""

    query: str
    documents: list[str]
    content_ids: list[int]
    truncated: bool


def fit_prompt(
    query: TokenizedText,
    documents: Sequence[TokenizedText],
    *,
    max_prompt_tokens: int,
    max_query_tokens: int,
    overhead: int,
    encode: Callable[[str], list[int]],
) -> FittedPrompt:
    """Fit ``query`` and ``documents`` into ``max_prompt_tokens`` (``overhead``: scaffolding tokens around content).

    ``encode`` tokenises the whole content (user text as plain text). Joint tokenisation can differ from the
    piecewise lengths by a few tokens at the seams; the loop below takes that slack back from the documents, then
    from the query, until the ids fit.
    """
    head, numbered, tail = listwise_prompt_parts("", [""] * len(documents))
    template = overhead + len(encode(head + "\n".join(numbered) + tail))
    available = max_prompt_tokens - template
    if available < 0:
        raise ValueError(
            f"max_prompt_tokens={max_prompt_tokens} cannot hold the listwise template for {len(documents)} documents "
            f"({template} tokens before any text): raise max_prompt_tokens or lower num_input_docs"
        )
    query_cap = min(max_query_tokens, available // 2)
    lengths = [len(d) for d in documents]
    slack = 0
    while True:
        query_text = query.cut(query_cap)
        query_len = min(len(query), query_cap)
        doc_cap = fit_documents_to_budget(lengths, available - query_len - slack)
        fitted = [d.cut(doc_cap) for d in documents]
        content_ids = encode(listwise_prompt_content(query_text, fitted))
        overflow = len(content_ids) + overhead - max_prompt_tokens
        if overflow <= 0:
            truncated = doc_cap is not None or query_len < len(query)
            return FittedPrompt(query_text, fitted, content_ids, truncated)
        if doc_cap is None or doc_cap > 0:
            slack += overflow
        elif query_cap > 0:
            query_cap = max(0, min(query_cap, query_len) - overflow)
        else:  # nothing left to cut: the template alone overflows after joint tokenisation
            raise ValueError(f"max_prompt_tokens={max_prompt_tokens} is too small for the listwise template")


def prepare_documents(documents: Sequence[str]) -> list[str]:
    """eval.py's word cut, applied to every candidate before tokenisation."""
    return [cut_to_words(d) for d in documents]
