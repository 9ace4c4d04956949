"""``e2rank serve`` as a real process on a loopback port, called by the clients and framework components that
call Cohere, TEI and OpenAI: every order must equal ``E2RankModel.rerank`` on the same inputs, in this process."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from server_fixture import ServerProcess

from e2rank_core import E2RankModel, default_model, scale_score

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_DOCUMENTS = 300
MAX_TEXT_CHARS = 5_000
MAX_BODY_BYTES = 400_000

QUERY = "What is the capital of France?"
DOCS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital and largest city of France.",
    "Lyon is a large city in France, known for its food.",
    "Madrid is the capital of Spain.",
    "The Eiffel Tower stands in Paris.",
    "France is a country in Western Europe.",
    "Rome is the capital of Italy.",
    "Bordeaux is a French city famous for wine.",
]

_TOPICS = ["river", "mountain", "library", "harbour", "railway", "cathedral", "market", "university", "bridge", "park"]
_CITIES = ["Paris", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna", "Prague", "Oslo", "Dublin", "Athens"]
POOL = [f"The {topic} of {city}." for topic in _TOPICS for city in _CITIES]


@pytest.fixture(scope="module")
def server():
    args = ["--api-key", KEY, "--max-documents", str(MAX_DOCUMENTS), "--max-text-chars", str(MAX_TEXT_CHARS)]
    with ServerProcess([*args, "--max-body-bytes", str(MAX_BODY_BYTES), "--max-wait-ms", "5"]) as proc:
        yield proc


@pytest.fixture(scope="module")
def model():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the server process computes at the same time, on the same 2 cores
    yield E2RankModel(default_model(), device="cpu")
    torch.set_num_threads(threads)


def expected_order(model: E2RankModel, query: str, docs: list[str], top_n: int | None = None) -> list[int]:
    return [hit.index for hit in model.rerank(query, docs, top_k=top_n)]


def metric(server: ServerProcess, name: str) -> float | None:
    text = httpx.get(server.url + "/metrics").text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return None if match is None else float(match.group(1))


# ------------------------------------------------------------------------------------------ service endpoints
def test_health_models_docs_metrics(server):
    assert httpx.get(server.url + "/health").json() == {"status": "ok", "model": default_model()}
    models = httpx.get(server.url + "/v1/models", headers=AUTH).json()
    assert models["object"] == "list" and models["data"][0]["id"] == default_model()
    assert models["data"][0]["dimension"] == 384
    assert "swagger" in httpx.get(server.url + "/docs").text.lower()
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for path in ("/v1/rerank", "/v2/rerank", "/rerank", "/v1/embeddings", "/v1/embed", "/v2/embed", "/v1/models"):
        assert path in paths
    text = httpx.get(server.url + "/metrics").text
    assert 'e2rank_requests_total{endpoint="/health",status="200"}' in text
    assert "e2rank_cache_hits_total" in text and "e2rank_model_loaded 1.0" in text


def test_model_settings_default_to_the_models_own():
    """``num_input_docs`` and ``query_weight`` reach ``E2RankModel`` as given; ``None`` (default) = the model's."""
    import argparse

    from e2rank_core.server import ServerSettings
    from e2rank_core.server.cli import register

    defaults = ServerSettings()
    assert (defaults.num_input_docs, defaults.query_weight) == (None, None)
    kwargs = ServerSettings(num_input_docs=5, query_weight=0).model_kwargs()
    assert (kwargs["num_input_docs"], kwargs["query_weight"]) == (5, 0.0)
    env = ServerSettings.from_env({"E2RANK_NUM_INPUT_DOCS": "7", "E2RANK_QUERY_WEIGHT": "0.5"})
    assert (env.num_input_docs, env.query_weight) == (7, 0.5)
    for bad, error in (({"query_weight": -1}, ValueError), ({"query_weight": "x"}, TypeError)):
        with pytest.raises(error, match="query_weight"):
            ServerSettings(**bad)
    with pytest.raises(ValueError, match="num_input_docs"):
        ServerSettings(num_input_docs=0)
    with pytest.raises(ValueError, match="E2RANK_QUERY_WEIGHT"):
        ServerSettings.from_env({"E2RANK_QUERY_WEIGHT": "heavy"})

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["serve"])
    assert (args.num_input_docs, args.query_weight) == (None, None)
    args = parser.parse_args(["serve", "--query-weight", "0", "--num-input-docs", "5"])
    assert (args.num_input_docs, args.query_weight) == (5, 0.0)


def test_settings_from_env_and_the_zero_argument_factory(monkeypatch):
    from e2rank_core.server import ServerSettings, app_from_env

    env = {"E2RANK_API_KEY": "k", "E2RANK_MAX_QUEUE": "7", "E2RANK_BATCHING": "0", "E2RANK_MAX_WAIT_MS": "2.5"}
    settings = ServerSettings.from_env(env)
    assert (settings.api_key, settings.max_queue, settings.batching, settings.max_wait_ms) == ("k", 7, False, 2.5)
    with pytest.raises(ValueError, match="E2RANK_MAX_QUEUE"):
        ServerSettings.from_env({"E2RANK_MAX_QUEUE": "many"})
    with pytest.raises(ValueError, match="max_documents"):
        ServerSettings(max_documents=0)

    monkeypatch.setenv("E2RANK_MODEL", "some/model-that-is-not-loaded-yet")
    monkeypatch.setenv("E2RANK_API_KEY", "k")
    app = app_from_env()  # the model loads in the lifespan, which has not run: /health says so

    async def probe():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e2rank") as client:
            health = await client.get("/health")
            rerank = await client.post(
                "/v1/rerank", json={"query": "q", "documents": ["d"]}, headers={"Authorization": "Bearer k"}
            )
            return health, rerank

    health, rerank = asyncio.run(probe())
    assert health.status_code == 503 and health.json()["status"] == "loading"
    assert rerank.status_code == 503 and rerank.headers["retry-after"] == "1"


def test_cli_module_imports_no_web_framework():
    import subprocess
    import sys

    heavy = "{'fastapi', 'uvicorn', 'prometheus_client'}"
    code = f"import sys, e2rank_core.server.cli, e2rank_core.server; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ clients
def test_cohere_client_v1_sync_and_async(server, model):
    import cohere

    want = expected_order(model, QUERY, DOCS, 3)
    cosines = {hit.index: hit.score for hit in model.rerank(QUERY, DOCS)}
    client = cohere.Client(api_key=KEY, base_url=server.url)
    response = client.rerank(query=QUERY, documents=DOCS, top_n=3, return_documents=True, model="e2rank")
    assert [r.index for r in response.results] == want
    for r in response.results:
        assert r.relevance_score == pytest.approx(scale_score(cosines[r.index]), abs=1e-5)
        assert r.document.text == DOCS[r.index]
    embedded = client.embed(texts=DOCS[:3], input_type="search_document", model="e2rank")
    assert embedded.response_type == "embeddings_floats"
    np.testing.assert_allclose(np.array(embedded.embeddings), model.embed_documents(DOCS[:3]), atol=1e-5)
    by_type = client.embed(texts=["capital"], input_type="search_query", embedding_types=["float"])
    np.testing.assert_allclose(by_type.embeddings.float_[0], model.embed_queries(["capital"])[0], atol=1e-5)

    async def run_async():
        async_client = cohere.AsyncClient(api_key=KEY, base_url=server.url)
        return await async_client.rerank(query=QUERY, documents=DOCS, top_n=3)

    assert [r.index for r in asyncio.run(run_async()).results] == want


def test_cohere_client_v2_sync_and_async(server, model):
    import cohere

    want = expected_order(model, QUERY, DOCS)
    client = cohere.ClientV2(api_key=KEY, base_url=server.url)
    response = client.rerank(model="e2rank", query=QUERY, documents=DOCS)
    assert [r.index for r in response.results] == want
    embedded = client.embed(model="e2rank", texts=DOCS, input_type="search_document", embedding_types=["float"])
    np.testing.assert_allclose(np.array(embedded.embeddings.float_), model.embed_documents(DOCS), atol=1e-5)

    async def run_async():
        async_client = cohere.AsyncClientV2(api_key=KEY, base_url=server.url)
        reranked = await async_client.rerank(model="e2rank", query=QUERY, documents=DOCS, top_n=2)
        queries = await async_client.embed(
            model="e2rank", texts=[QUERY], input_type="search_query", embedding_types=["float"]
        )
        return reranked, queries

    reranked, queries = asyncio.run(run_async())
    assert [r.index for r in reranked.results] == want[:2]
    np.testing.assert_allclose(queries.embeddings.float_[0], model.embed_queries([QUERY])[0], atol=1e-5)


def test_openai_embeddings(server, model):
    import openai

    client = openai.OpenAI(api_key=KEY, base_url=server.url + "/v1")
    as_floats = client.embeddings.create(model="e2rank", input=DOCS[:4], encoding_format="float")
    as_default = client.embeddings.create(model="e2rank", input=DOCS[:4])  # the SDK asks for base64 here
    want = model.embed_documents(DOCS[:4])
    np.testing.assert_allclose([d.embedding for d in as_floats.data], want, atol=1e-5)
    np.testing.assert_allclose([d.embedding for d in as_default.data], want, atol=1e-5)
    assert as_floats.usage.total_tokens > 0 and as_floats.model == default_model()
    query = client.embeddings.create(model="e2rank", input=QUERY, extra_body={"input_type": "query"})
    np.testing.assert_allclose(query.data[0].embedding, model.embed_queries([QUERY])[0], atol=1e-5)
    raw = httpx.post(
        server.url + "/v1/embeddings", headers=AUTH, json={"input": "x", "encoding_format": "base64"}
    ).json()
    vector = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, model.embed_documents(["x"])[0], atol=1e-5)


def test_haystack_components(server, model):
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.cohere import CohereRanker
    from haystack_integrations.components.rankers.huggingface_api import HuggingFaceTEIRanker

    documents = [Document(content=text) for text in DOCS]
    want = [DOCS[i] for i in expected_order(model, QUERY, DOCS, 3)]
    cohere_ranker = CohereRanker(api_key=Secret.from_token(KEY), api_base_url=server.url, top_k=3)
    ranked = cohere_ranker.run(query=QUERY, documents=documents)["documents"]
    assert [d.content for d in ranked] == want
    assert all(0.0 <= d.score <= 1.0 for d in ranked)
    tei_ranker = HuggingFaceTEIRanker(url=server.url, token=Secret.from_token(KEY), top_k=3)
    assert [d.content for d in tei_ranker.run(query=QUERY, documents=documents)["documents"]] == want


def test_llama_index_cohere_rerank(server, model):
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.cohere_rerank import CohereRerank

    nodes = [NodeWithScore(node=TextNode(text=text), score=0.0) for text in DOCS]
    reranker = CohereRerank(api_key=KEY, base_url=server.url, top_n=3, model="e2rank")
    ranked = reranker.postprocess_nodes(nodes, query_str=QUERY)
    assert [n.node.get_content() for n in ranked] == [DOCS[i] for i in expected_order(model, QUERY, DOCS, 3)]


def test_langchain_cohere_rerank(server, model):
    import cohere
    from langchain_cohere import CohereRerank
    from langchain_core.documents import Document

    reranker = CohereRerank(client=cohere.ClientV2(api_key=KEY, base_url=server.url), model="e2rank", top_n=3)
    ranked = reranker.compress_documents([Document(page_content=text) for text in DOCS], QUERY)
    assert [d.page_content for d in ranked] == [DOCS[i] for i in expected_order(model, QUERY, DOCS, 3)]
    assert all(isinstance(d.metadata["relevance_score"], float) for d in ranked)


# ------------------------------------------------------------------------------------------ batching and reuse
def test_200_concurrent_reranks_each_equal_its_single_answer(server, model):
    rng = np.random.default_rng(0)
    cases = []
    for i in range(20):
        size = int(rng.integers(1, 13))
        docs = [POOL[j] for j in rng.choice(len(POOL), size=size, replace=False)]
        cases.append((f"Which {_TOPICS[i % 10]} is in {_CITIES[i % 10]}?", docs))
    expected = [model.rerank(query, docs) for query, docs in cases]

    async def fire():
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(headers=AUTH, timeout=120, limits=limits) as client:
            requests = [
                client.post(server.url + "/v2/rerank", json={"query": q, "documents": d}) for q, d in cases * 10
            ]
            return await asyncio.gather(*requests)

    batches_before = metric(server, "e2rank_batch_size_count") or 0.0
    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 200
    for n, response in enumerate(responses):
        want = expected[n % len(cases)]
        results = response.json()["results"]
        assert [r["index"] for r in results] == [hit.index for hit in want]
        np.testing.assert_allclose(
            [r["relevance_score"] for r in results], [scale_score(hit.score) for hit in want], atol=1e-5
        )
    batch_text = httpx.get(server.url + "/metrics").text
    calls = float(re.search(r'^e2rank_batch_size_count\{kind="rerank"\} (\S+)$', batch_text, re.M).group(1))
    assert calls - batches_before < 200  # requests were gathered into shared model calls


def test_reuse_of_embeddings_sent_back_and_of_the_cache(server, model):
    docs = [
        f"Reuse check {i}: the {t} of {c} opens at nine." for i, (t, c) in enumerate(zip(_TOPICS, _CITIES, strict=True))
    ]
    want = [hit.index for hit in model.rerank("When does the library open?", docs)]
    with httpx.Client(base_url=server.url, headers=AUTH) as client:
        vectors = client.post("/v1/embeddings", json={"input": docs[:6]}).json()["data"]
        misses = metric(server, "e2rank_cache_misses_total")
        encoded = metric(server, "e2rank_encoded_texts_total")
        # 6 documents carry their vector, 4 do not (first seen here: encoded), plus the prompt
        payload = [{"text": d, "embedding": v["embedding"]} for d, v in zip(docs, vectors, strict=False)] + docs[6:]
        response = client.post("/v2/rerank", json={"query": "When does the library open?", "documents": payload})
        assert [r["index"] for r in response.json()["results"]] == want
        # the 6 sent vectors were not looked up; the query is embedded (once) when the model adds it to the prompt
        query_pass = 1 if model.query_weight else 0
        assert metric(server, "e2rank_cache_misses_total") == misses + 4 + query_pass
        if encoded is not None:
            assert metric(server, "e2rank_encoded_texts_total") == encoded + 4 + 1 + query_pass

        # All 10 are now in the service's cache: a plain rerank of them is the prompt's forward pass only.
        hits, misses, encoded = (
            metric(server, f"e2rank_{m}_total") for m in ("cache_hits", "cache_misses", "encoded_texts")
        )
        response = client.post("/v1/rerank", json={"query": "When does the library open?", "documents": docs})
        assert [r["index"] for r in response.json()["results"]] == want
        assert metric(server, "e2rank_cache_hits_total") == hits + 10 + query_pass
        assert metric(server, "e2rank_cache_misses_total") == misses
        if encoded is not None:
            assert metric(server, "e2rank_encoded_texts_total") == encoded + 1


def test_max_tokens_per_doc_cuts_documents(server, model):
    body = {"query": QUERY, "documents": DOCS, "max_tokens_per_doc": 3, "return_documents": True}
    results = httpx.post(server.url + "/v2/rerank", headers=AUTH, json=body).json()["results"]
    offsets = model.backend.tokenizer(DOCS, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    cut = [text[: spans[2][1]] for text, spans in zip(DOCS, offsets, strict=True)]  # the first 3 tokens
    assert cut[0] == "Berlin is the"
    assert [r["index"] for r in results] == expected_order(model, QUERY, cut)
    assert [r["document"]["text"] for r in results] == [DOCS[r["index"]] for r in results]  # texts as sent


def test_tei_truncation_direction_left_keeps_the_end_of_long_texts(server, model):
    filler = "Notes on regional history and culture. " * 80  # far past the 256-token document budget
    texts = [filler + "Berlin is the capital of Germany.", filler + "Paris is the capital of France."]
    body = {"query": "What is the capital of France?", "texts": texts, "return_text": True, "raw_scores": True}
    right = httpx.post(server.url + "/rerank", headers=AUTH, json=body).json()
    left = httpx.post(server.url + "/rerank", headers=AUTH, json={**body, "truncation_direction": "Left"}).json()
    assert right[0]["score"] == right[1]["score"] and right[0]["index"] == 0  # both cut to the same filler: a tie
    ends = model.truncate_to_tokens(texts, model.max_document_text_tokens, keep="end")
    assert ends[1].endswith("Paris is the capital of France.") and len(ends[1]) < len(texts[1])
    assert [r["index"] for r in left] == expected_order(model, body["query"], ends) == [1, 0]
    assert [r["text"] for r in left] == [texts[r["index"]] for r in left]  # texts as sent


# ------------------------------------------------------------------------------------------ auth and bad input
def test_auth(server):
    import cohere

    body = {"query": QUERY, "documents": DOCS}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        response = httpx.post(server.url + "/v1/rerank", json=body, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
        assert response.headers["www-authenticate"] == "Bearer"
    with pytest.raises(cohere.errors.UnauthorizedError):
        cohere.ClientV2(api_key="wrong", base_url=server.url).rerank(model="m", query=QUERY, documents=DOCS)
    assert httpx.post(server.url + "/v1/rerank", json=body, headers=AUTH).status_code == 200
    assert httpx.get(server.url + "/health").status_code == 200  # probes need no key


BAD_INPUTS = [
    ("/v1/rerank", {"query": "", "documents": DOCS}, 422),
    ("/v1/rerank", {"query": "   ", "documents": DOCS}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": []}, 422),
    ("/v1/rerank", {"query": QUERY}, 422),
    ("/v1/rerank", {"documents": DOCS}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "top_n": 0}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "top_n": -3}, 422),
    ("/v1/rerank", {"query": 42, "documents": DOCS}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": "one string"}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": [1, 2]}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": [{"title": "no text"}]}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": DOCS, "return_documents": "maybe"}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": [{"text": "a", "embedding": [0.1] * 7}]}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": [{"text": "a", "embedding": ["x"] * 384}]}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": ["d"] * (MAX_DOCUMENTS + 1)}, 422),
    ("/v1/rerank", {"query": QUERY, "documents": ["d" * (MAX_TEXT_CHARS + 1)]}, 422),
    ("/v1/rerank", {"query": "q" * (MAX_TEXT_CHARS + 1), "documents": DOCS}, 422),
    ("/v1/rerank", [QUERY, DOCS], 422),
    ("/v2/rerank", {"query": QUERY, "documents": DOCS, "max_tokens_per_doc": 0}, 422),
    ("/rerank", {"query": QUERY, "texts": []}, 422),
    ("/rerank", {"query": QUERY, "texts": DOCS, "truncation_direction": "up"}, 422),
    ("/v1/embeddings", {"input": []}, 422),
    ("/v1/embeddings", {"input": [[101, 102]]}, 422),
    ("/v1/embeddings", {"input": "x", "encoding_format": "int8"}, 422),
    ("/v1/embeddings", {"input": "x", "dimensions": 7}, 422),
    ("/v1/embed", {"texts": []}, 422),
    ("/v2/embed", {"texts": ["x"], "embedding_types": ["int8"]}, 422),
    ("/v2/embed", {"texts": ["x"], "input_type": "poetry"}, 422),
]


@pytest.mark.parametrize(("path", "body", "status"), BAD_INPUTS)
def test_bad_input_is_a_4xx_with_a_json_message(server, path, body, status):
    response = httpx.post(server.url + path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    payload = response.json()
    assert isinstance(payload["message"], str) and payload["message"] == payload["error"]["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("content", "status"),
    [(b'{"query": "q", "documents": [', 400), (b'{"query": "\xff\xfe", "documents": ["a"]}', 400), (b"", 422)],
)
def test_invalid_json_and_non_utf8_bodies(server, content, status):
    headers = {**AUTH, "Content-Type": "application/json"}
    response = httpx.post(server.url + "/v1/rerank", content=content, headers=headers)
    assert response.status_code == status and "message" in response.json()


def test_wrong_method_and_path_are_json_errors(server):
    assert httpx.get(server.url + "/v1/rerank", headers=AUTH).json()["error"]["code"] == 405
    assert httpx.post(server.url + "/v9/nothing", headers=AUTH).json()["error"]["code"] == 404


def test_oversized_bodies_get_413(server):
    body = b'{"query": "q", "documents": ["' + b"x" * MAX_BODY_BYTES + b'"]}'
    headers = {**AUTH, "Content-Type": "application/json"}
    response = httpx.post(server.url + "/v1/rerank", content=body, headers=headers)  # Content-Length
    assert response.status_code == 413 and "exceeds" in response.json()["message"]

    def chunks():  # no Content-Length: counted as it streams
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    response = httpx.post(server.url + "/v1/rerank", content=chunks(), headers=headers)
    assert response.status_code == 413 and response.json()["error"]["type"] == "request_too_large"


# ------------------------------------------------------------------------------------------ queue limit, shutdown
async def test_queue_limit_gives_429_with_retry_after(model):
    """``create_app`` around a loaded model, in this process: more requests than ``max_queue`` get 429."""
    from e2rank_core.server import ServerSettings, create_app

    app = create_app(model, ServerSettings(max_queue=2, batching=False))
    body = {"query": QUERY, "documents": [f"{text} Queue check {i}." for i, text in enumerate(POOL[:40])]}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e2rank", timeout=120) as client:
            responses = await asyncio.gather(*(client.post("/v1/rerank", json=body) for _ in range(12)))
    codes = [r.status_code for r in responses]
    assert 200 in codes and 429 in codes and set(codes) <= {200, 429}
    busy = next(r for r in responses if r.status_code == 429)
    assert busy.headers["retry-after"] == "1" and busy.json()["error"]["type"] == "rate_limit_error"
    assert all(
        r.json()["results"] == responses[codes.index(200)].json()["results"] for r in responses if r.status_code == 200
    )


def test_sigterm_drains_in_flight_requests_then_exits_0(server):
    """Last test of the module: it stops the shared server."""
    slow = {"query": QUERY, "documents": [f"Shutdown {i}: {text}" for i, text in enumerate(POOL * 2)]}
    result: dict[str, httpx.Response] = {}

    def send() -> None:
        result["response"] = httpx.post(server.url + "/v2/rerank", json=slow, headers=AUTH, timeout=120)

    worker = threading.Thread(target=send)
    worker.start()
    deadline = time.monotonic() + 30
    while metric(server, "e2rank_queue_depth") != 1.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert metric(server, "e2rank_queue_depth") == 1.0  # the request is with the model now
    assert server.stop() == 0
    worker.join(60)
    assert result["response"].status_code == 200
    assert len(result["response"].json()["results"]) == len(slow["documents"])
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/health", timeout=2)
