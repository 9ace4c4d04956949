"""``e2rank index`` and ``e2rank search``: end-to-end search on Qdrant (embedded folder or server).

Example::

    e2rank index examples/search/docs --collection demo --store /tmp/e2rank-demo
    e2rank search "how do bees find flowers?" --collection demo --store /tmp/e2rank-demo --top-k 3
    e2rank search --queries ../shared/data/scifact/queries.jsonl --output run.trec --collection scifact --store /tmp/s

qdrant-client is imported only when one of these commands runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import E2RankModel
    from . import SearchHit, SearchStore

#: Where the embedded store lives when neither --store nor --qdrant-url is given.
DEFAULT_STORE = os.environ.get("E2RANK_STORE", "e2rank-store")


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection", "-c", required=True, help="Qdrant collection name")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--store", default=None, help=f"embedded Qdrant folder (default: $E2RANK_STORE or ./{DEFAULT_STORE})"
    )
    where.add_argument("--qdrant-url", default=None, help="a Qdrant server or cluster, e.g. http://localhost:6333")
    parser.add_argument("--api-key", default=os.environ.get("QDRANT_API_KEY"), help="server API key ($QDRANT_API_KEY)")
    # dest is not "model": the top-level CLI fills a None "model" with the default model, and search must be able
    # to tell "no --model" (use the collection's) from an explicit one.
    parser.add_argument("--model", "-m", dest="search_model", default=None, help="model id or path")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--dtype", default=None, help="float32, float16 or bfloat16")
    parser.add_argument("--backend", default=None, help="torch (default), onnx, openvino, onnx-int8, openvino-int8")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser(
        "index",
        help="embed documents into a Qdrant collection (embedded folder or server)",
        description="Embed a BEIR corpus, a JSONL file ({'text', 'id'?, 'title'?, 'metadata'?} lines) or a folder of "
        ".txt/.md files (one document per file) and upsert them into Qdrant. Idempotent: a rerun embeds only new or "
        "changed documents. The collection records the model; --model defaults to it (or to the default model).",
    )
    index.add_argument("source", help="corpus.jsonl, a BEIR folder, a .jsonl file or a folder of .txt/.md files")
    _add_store_options(index)
    index.add_argument("--format", choices=["auto", "beir", "jsonl", "folder"], default="auto", dest="source_format")
    index.add_argument(
        "--split-passages",
        type=int,
        default=None,
        metavar="WORDS",
        help="folder sources: cut files at blank lines and pack paragraphs into passages of at most WORDS words",
    )
    index.add_argument("--batch-size", type=int, default=256, help="documents per embed + upsert batch (256)")
    index.add_argument("--recreate", action="store_true", help="drop the collection first (e.g. to change model)")
    index.set_defaults(func=_cmd_index)

    search = subparsers.add_parser(
        "search",
        help="search a collection: retrieve with the query embedding, rerank with E2Rank (one forward pass)",
        description="Embed the query, retrieve --candidates documents with their stored vectors from Qdrant, rerank "
        "them with the E2Rank listwise prompt (reusing the vectors) and print the best --top-k. Batch mode: "
        "--queries queries.jsonl --output run.trec.",
    )
    search.add_argument("query", nargs="?", default=None, help="the query (or --queries FILE)")
    _add_store_options(search)
    search.add_argument("--top-k", type=int, default=10, help="results per query (10)")
    search.add_argument("--candidates", type=int, default=100, help="retrieved candidates reranked per query (100)")
    search.add_argument("--no-rerank", action="store_true", help="retrieval order only (no E2Rank rerank)")
    search.add_argument("--num-input-docs", type=int, default=None, help="candidates in the listwise prompt")
    search.add_argument("--jsonl", action="store_true", help="print one JSON object per hit")
    search.add_argument("--queries", default=None, help="BEIR queries.jsonl ({'_id', 'text'} lines) or its folder")
    search.add_argument("--output", default=None, help="TREC run file written in --queries mode ('-' = stdout)")
    search.add_argument("--run-tag", default=None, help="tag column of the TREC run (default: e2rank or e2rank-dense)")
    search.set_defaults(func=_cmd_search)


def _open(args: argparse.Namespace) -> SearchStore:
    from . import open_store

    if args.qdrant_url:
        return open_store(url=args.qdrant_url, api_key=args.api_key)
    return open_store(path=args.store or DEFAULT_STORE)


def _model(args: argparse.Namespace, name: str, record: dict[str, Any] | None) -> E2RankModel:
    from ..model import shared_model

    # only the options given, so that the model is shared with in-process callers that name no device/dtype
    given = (("device", args.device), ("dtype", args.dtype), ("backend", args.backend))
    settings: dict[str, Any] = {k: v for k, v in given if v is not None}
    if record is not None and record.get("plain_queries"):
        settings["plain_queries"] = True
    return shared_model(name, **settings)


def _cmd_index(args: argparse.Namespace) -> int:
    from ..resolve import default_model
    from . import ModelMismatchError, index

    with _open(args) as store:
        record = None
        if not args.recreate and store.exists(args.collection):
            record = store.record(args.collection)
            if args.search_model and args.search_model != record["model"]:
                raise ModelMismatchError(
                    f"collection {args.collection!r} holds vectors of model {record['model']!r}, not "
                    f"{args.search_model!r}; index into another collection, or pass --recreate to replace it"
                )
        name = args.search_model or (record["model"] if record else default_model())
        model = _model(args, name, record)
        report = index(
            store,
            args.collection,
            args.source,
            model=model,
            source_format=args.source_format,
            passage_words=args.split_passages,
            batch_size=args.batch_size,
            recreate=args.recreate,
            show_progress=not args.quiet,
        )
    print(
        f"indexed {report.documents} documents into {args.collection!r} at {store.location} with {report.model}: "
        f"{report.embedded} embedded, {report.unchanged} unchanged, {report.points} in the collection "
        f"({report.seconds:.1f} s)"
    )
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from . import ModelMismatchError, search_batch
    from .sources import read_queries

    if (args.query is None) == (args.queries is None):
        raise ValueError("give a QUERY or --queries FILE (not both)")
    if args.queries is not None and not args.output:
        raise ValueError("--queries needs --output run.trec ('-' for standard output)")
    if args.query is not None and args.output:
        raise ValueError("--output is for --queries mode; a single query prints its results")
    queries = read_queries(args.queries) if args.queries else [("query", args.query)]
    rerank = not args.no_rerank
    with _open(args) as store:
        record = store.record(args.collection)
        if args.search_model and args.search_model != record["model"]:
            raise ModelMismatchError(
                f"collection {args.collection!r} was indexed with model {record['model']!r}, not "
                f"{args.search_model!r}; search it with --model {record['model']} (or no --model), or re-index "
                "with --recreate"
            )
        model = _model(args, args.search_model or record["model"], record)
        store.check_model(args.collection, model)
        if args.query is not None:
            hits = search_batch(
                store,
                args.collection,
                [args.query],
                model=model,
                top_k=args.top_k,
                candidates=args.candidates,
                rerank=rerank,
                num_input_docs=args.num_input_docs,
            )[0]
            _print_hits(hits, args.jsonl)
            return 0
        from tqdm.auto import tqdm

        results: dict[str, list[SearchHit]] = {}
        chunk = 32
        with tqdm(total=len(queries), desc="e2rank search", unit="query", disable=args.quiet) as progress:
            for start in range(0, len(queries), chunk):
                part = queries[start : start + chunk]
                ranked = search_batch(
                    store,
                    args.collection,
                    [text for _, text in part],
                    model=model,
                    top_k=args.top_k,
                    candidates=args.candidates,
                    rerank=rerank,
                    num_input_docs=args.num_input_docs,
                )
                results.update({qid: hits for (qid, _), hits in zip(part, ranked, strict=True)})
                progress.update(len(part))
    tag = args.run_tag or ("e2rank" if rerank else "e2rank-dense")
    if args.output == "-":
        write_trec(sys.stdout, results, tag)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            write_trec(handle, results, tag)
        print(f"wrote {sum(len(h) for h in results.values())} lines for {len(results)} queries to {args.output}")
    return 0


def write_trec(handle: Any, results: dict[str, list[SearchHit]], tag: str) -> None:
    """Write ``query id -> hits`` as TREC run lines ``qid Q0 docid rank score tag`` (ids must have no whitespace)."""
    if any(c.isspace() for c in tag):
        raise ValueError(f"the run tag must have no whitespace, got {tag!r}")
    for qid, hits in results.items():
        for hit in hits:
            if any(c.isspace() for c in hit.id):
                raise ValueError(f"document id {hit.id!r} has whitespace and cannot be written to a TREC run")
            handle.write(f"{qid} Q0 {hit.id} {hit.rank} {hit.score:.6f} {tag}\n")


def _print_hits(hits: list[SearchHit], as_jsonl: bool) -> None:
    for hit in hits:
        if as_jsonl:
            print(json.dumps(hit.to_dict(), ensure_ascii=False))
            continue
        snippet = " ".join(hit.text.split())
        title = f"{hit.title}: " if hit.title else ""
        print(
            f"{hit.rank:>3}  {hit.score:+.4f}  (retrieval {hit.retrieval_score:+.4f})  {hit.id}  "
            f"{title}{snippet[:90]}{'…' if len(snippet) > 90 else ''}"
        )
    if not hits:
        print("(no results: the collection is empty)")
