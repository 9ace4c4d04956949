"""Document sources for ``e2rank index``: a BEIR corpus, a JSONL file, or a folder of ``.txt`` / ``.md`` files.

Example::

    from e2rank_core.search import read_source

    docs = read_source("examples/search/docs")  # one document per file, id = the path inside the folder
    docs = read_source("examples/search/docs", passage_words=120)  # long files split into passages
    docs = read_source("../shared/data/scifact")  # a BEIR folder (its corpus.jsonl)

Formats (``source_format="auto"`` picks by what the path is):

- ``beir``: a BEIR ``corpus.jsonl`` (or a folder holding one): ``{"_id", "title", "text"}`` per line.
- ``jsonl``: ``{"text": ...}`` per line, with optional ``id`` (or ``_id``), ``title`` and ``metadata`` (or
  ``meta``, an object); any other field is kept in the metadata. A line without an id gets the first 16 hex digits
  of the SHA-1 of its title and text, so re-indexing the same file is idempotent.
- ``folder``: every ``*.txt`` and ``*.md`` file below the folder (recursively, sorted), one document per file, id =
  the path relative to the folder (``/``-separated); other files are ignored. A ``.txt``/``.md`` file that is not
  UTF-8 text (or holds NUL bytes) is an error.

Passage splitting (``passage_words=N``, folder sources only): a file is cut at blank lines into paragraphs and
consecutive paragraphs are packed into passages of at most ``N`` words; a paragraph longer than ``N`` words is cut
into ``N``-word pieces. Passages get ids ``path#0``, ``path#1``, … and ``metadata = {"path": path, "passage": i}``. A
file of at most ``N`` words stays one document with id ``path#0``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SourceFormat = Literal["auto", "beir", "jsonl", "folder"]
SOURCE_FORMATS: tuple[str, ...] = ("auto", "beir", "jsonl", "folder")
TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")


@dataclass(frozen=True)
class Document:
    """One document to index: a stable ``id``, its ``text``, an optional ``title`` and JSON ``metadata``."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content(self) -> str:
        """What is embedded and shown to the reranker: title and text joined by a space (the BEIR convention)."""
        return " ".join(part for part in (self.title.strip(), self.text.strip()) if part)


def read_source(
    path: str | Path, *, source_format: SourceFormat = "auto", passage_words: int | None = None
) -> list[Document]:
    """Read every document of a source (see the module docstring for the formats).

    Raises ``FileNotFoundError`` for a missing path, ``ValueError`` for an empty source, a duplicate id, a line
    that is not a JSON object with a string ``text``, or a file that is not UTF-8 text.
    """
    path = Path(path)
    if source_format not in SOURCE_FORMATS:
        raise ValueError(f"source_format must be one of {SOURCE_FORMATS}, got {source_format!r}")
    if passage_words is not None and (isinstance(passage_words, bool) or not isinstance(passage_words, int)):
        raise TypeError(f"passage_words must be an int, got {type(passage_words).__name__}")
    if passage_words is not None and passage_words < 1:
        raise ValueError(f"passage_words must be >= 1, got {passage_words}")
    if not path.exists():
        raise FileNotFoundError(f"source {path} does not exist")
    fmt = _detect_format(path) if source_format == "auto" else source_format
    if passage_words is not None and fmt != "folder":
        raise ValueError("passage splitting (passage_words) applies to folder sources of .txt/.md files only")
    if fmt in ("beir", "jsonl"):
        if path.is_dir():
            path = path / "corpus.jsonl"
            if not path.is_file():
                raise ValueError(f"{path.parent} has no corpus.jsonl: give a BEIR folder, a .jsonl file or a folder")
        documents = list(_read_jsonl(path))
    else:
        if not path.is_dir():
            raise ValueError(f"{path} is not a folder (source format 'folder')")
        documents = list(_read_folder(path, passage_words))
    documents = [d for d in documents if d.content]
    if not documents:
        raise ValueError(f"source {path} holds no document with text")
    seen: set[str] = set()
    for doc in documents:
        if doc.id in seen:
            raise ValueError(f"source {path} has the document id {doc.id!r} twice; ids must be unique")
        seen.add(doc.id)
    return documents


def _detect_format(path: Path) -> str:
    if path.is_dir():
        return "beir" if (path / "corpus.jsonl").is_file() else "folder"
    if path.suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    raise ValueError(
        f"{path} is not a source e2rank index reads: give a .jsonl file (BEIR corpus or {{'text': ...}} lines), "
        "a BEIR folder, or a folder of .txt/.md files"
    )


def _read_text(path: Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\x00" in text:
        raise ValueError(f"{path} is not a text file (it holds NUL bytes)")
    return text


def iter_jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a UTF-8 JSONL file whose objects all have a string ``text``."""
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number} is not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f"{path}:{number} has no string 'text' field (each line must be a JSON object)")
        yield number, record


def read_queries(path: str | Path) -> list[tuple[str, str]]:
    """(id, text) pairs of a BEIR ``queries.jsonl`` (``_id`` or ``id``, ``text``), or of the one in a folder.

    >>> read_queries("../shared/data/scifact")[:1]  # doctest: +SKIP
    [('0', '0-dimensional biomaterials lack inductive properties.')]
    """
    path = Path(path)
    if path.is_dir():
        path = path / "queries.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"queries file {path} does not exist")
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, record in iter_jsonl_records(path):
        qid = record.get("_id", record.get("id"))
        if qid is None or not str(qid).strip() or any(c.isspace() for c in str(qid)):
            raise ValueError(f"{path}:{number} needs an '_id' (or 'id') without whitespace")
        if str(qid) in seen:
            raise ValueError(f"{path}:{number}: query id {qid!r} appears twice")
        seen.add(str(qid))
        if record["text"].strip():
            pairs.append((str(qid), record["text"]))
    if not pairs:
        raise ValueError(f"{path} holds no query")
    return pairs


def _read_jsonl(path: Path) -> Iterator[Document]:
    for number, record in iter_jsonl_records(path):
        body = record["text"]
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise ValueError(f"{path}:{number}: 'title' must be a string")
        raw_id = record.get("_id", record.get("id"))
        if raw_id is None:
            doc_id = hashlib.sha1(f"{title}\n{body}".encode()).hexdigest()[:16]
        elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and str(raw_id).strip():
            doc_id = str(raw_id)
        else:
            raise ValueError(f"{path}:{number}: the id must be a non-empty string or an integer, got {raw_id!r}")
        metadata: dict[str, Any] = {}
        for key in ("metadata", "meta"):
            value = record.get(key)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{path}:{number}: {key!r} must be a JSON object")
            metadata.update(value)
        for key, value in record.items():
            if key not in ("_id", "id", "text", "title", "metadata", "meta"):
                metadata[key] = value
        yield Document(id=doc_id, text=body, title=title, metadata=metadata)


def _read_folder(folder: Path, passage_words: int | None) -> Iterator[Document]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise ValueError(f"folder {folder} has no .txt or .md file")
    for file in files:
        relative = file.relative_to(folder).as_posix()
        text = _read_text(file)
        if passage_words is None:
            yield Document(id=relative, text=text.strip(), metadata={"path": relative})
            continue
        for number, passage in enumerate(split_passages(text, passage_words)):
            yield Document(id=f"{relative}#{number}", text=passage, metadata={"path": relative, "passage": number})


def split_passages(text: str, max_words: int) -> list[str]:
    """Cut ``text`` at blank lines and pack consecutive paragraphs into passages of at most ``max_words`` words.

    A paragraph longer than ``max_words`` becomes ``max_words``-word pieces; whitespace inside a paragraph is kept
    as written, except for a piece of a cut paragraph (words joined by single spaces).

    >>> split_passages("one two\\n\\nthree\\n\\nfour five six", 3)
    ['one two\\n\\nthree', 'four five six']
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    pieces: list[tuple[str, int]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        words = paragraph.split()
        if not words:
            continue
        if len(words) <= max_words:
            pieces.append((paragraph, len(words)))
        else:
            pieces.extend(
                (" ".join(words[i : i + max_words]), len(words[i : i + max_words]))
                for i in range(0, len(words), max_words)
            )
    passages: list[str] = []
    current: list[str] = []
    count = 0
    for piece, words_in_piece in pieces:
        if current and count + words_in_piece > max_words:
            passages.append("\n\n".join(current))
            current, count = [], 0
        current.append(piece)
        count += words_in_piece
    if current:
        passages.append("\n\n".join(current))
    return passages
