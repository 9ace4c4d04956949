"""The E2Rank text formats, in one place.

Every string here is quoted from the official implementation (``src/eval.py``, the variant that produced
the paper's numbers). Adapters never build prompts themselves: they call these functions through
:class:`~e2rank_core.E2RankModel`.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The listwise instruction of eval.py's default (web search) template.
RERANK_INSTRUCTION = "Given a web search query and some relevant documents, rerank the documents that answer the query"

#: The default retrieval task of the E2Rank README, used in ``Instruct: {task}\nQuery:{query}``.
DEFAULT_RETRIEVAL_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

#: eval.py cuts every candidate to its first 1024 whitespace-separated words (words, not tokens).
DOCUMENT_MAX_WORDS = 1024


def cut_to_words(text: str, max_words: int = DOCUMENT_MAX_WORDS) -> str:
    """Return ``text`` cut to its first ``max_words`` whitespace-separated words.

    Texts within the limit are returned unchanged (their whitespace is kept); longer ones are re-joined
    with single spaces, as eval.py's ``" ".join(text.split()[:1024])`` does.
    """
    words = text.split()
    if len(words) <= max_words:
        return text
    return " ".join(words[:max_words])


def retrieval_query_text(query: str, instruction: str | None = None, *, plain: bool = False) -> str:
    """The retrieval-mode query: ``Instruct: {task}\\nQuery:{query}`` (no space after ``Query:``).

    ``plain=True`` returns the bare query, for embedders that were never trained with instructions.
    The EOS token is appended at the token level by the encoder, never as text, so that a literal
    ``<|endoftext|>`` written by a user stays plain text.
    """
    if plain:
        return query
    task = DEFAULT_RETRIEVAL_INSTRUCTION if instruction is None else instruction
    return f"Instruct: {task}\nQuery:{query}"


def listwise_prompt_parts(query: str, documents: Sequence[str]) -> tuple[str, list[str], str]:
    """The listwise user message split into (head, numbered documents, tail).

    ``head + "\\n".join(numbered) + tail`` is the full message content; the split lets the truncation
    policy shorten documents without ever touching the instruction or the query.
    """
    head = f"{RERANK_INSTRUCTION}:\nDocuments:\n"
    numbered = [f"[{i}] {doc}" for i, doc in enumerate(documents, start=1)]
    tail = f"\nSearch Query: {query}"
    return head, numbered, tail


def listwise_prompt_content(query: str, documents: Sequence[str]) -> str:
    """The listwise user message of eval.py::

    Given a web search query and some relevant documents, rerank the documents that answer the query:
    Documents:
    [1] {d1}
    ...
    [K] {dK}
    Search Query: {query}
    """
    head, numbered, tail = listwise_prompt_parts(query, documents)
    return head + "\n".join(numbered) + tail
