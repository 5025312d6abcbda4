"""`tunelab serve` against bad and abusive clients: one bad request fails alone, never its
neighbours; bodies past the limit are refused while they are read (chunked ones too); slow and
stalled clients are timed out; a model's NaN is an error, never invalid JSON.

The tiny classifier run of `test_serve` serves; tests that need real connections (keep-alive,
chunked uploads, half-sent heads) run uvicorn on loopback with `tunelab serve`'s guards.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_serve import (
    TEXTS,
    answer_to_a_half_sent_head,
    classifier_run,
    predictor,
    record_calls,
    run_async,
    state_of,
    uvicorn_serving,
)

from conftest import TOY_VOCAB
from tunelab.errors import ConfigError
from tunelab.serve import create_app
from tunelab.serve.backend import ServedClassifier

__all__ = ["classifier_run", "predictor"]  # module-scoped fixtures, made once for this module too

SURROGATE = b'{"texts": ["\\ud800"]}'  # valid JSON syntax; not Unicode text
JSON = {"content-type": "application/json"}
POISON = "dull"  # a toy word the tests' model wrappers fail or break on


def one_line_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert isinstance(message, str) and message and "\n" not in message
    return message


def test_a_lone_surrogate_fails_alone_among_30_batched_requests_and_keep_alive_survives(
    classifier_run: Path, predictor: Any
) -> None:
    app = create_app(classifier_run, max_batch_size=64, max_wait_ms=300)
    sizes = record_calls(app)
    good = [f"{TEXTS[i % 4]} {'very ' * (i // 4)}".strip() for i in range(30)]

    async def together(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=31)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            requests = [client.post("/v1/predict", json={"texts": [t]}) for t in good]
            requests.insert(13, client.post("/v1/predict", content=SURROGATE, headers=JSON))
            return list(await asyncio.gather(*requests))

    with uvicorn_serving(app) as url:
        responses = asyncio.run(together(url))
        port = int(url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        socket_used, answers = connection.sock, []
        for body in (SURROGATE, json.dumps({"texts": good[:2]}).encode(), SURROGATE):
            connection.request("POST", "/v1/predict", body, JSON)
            answer = connection.getresponse()
            answers.append((answer.status, json.loads(answer.read())))
        same_connection = connection.sock is socket_used  # http.client reconnects after a close
        connection.close()
    bad = responses.pop(13)
    message = one_line_error(bad, 422)
    assert message.startswith("texts.0 holds a lone surrogate (\\ud800) at character 0,")
    assert [r.status_code for r in responses] == [200] * 30
    ids, _ = predictor.predict(good)  # each got its own answer
    labels = [predictor.labels.names[i] for i in ids]
    assert [r.json()["predictions"][0]["label"] for r in responses] == labels
    assert sum(sizes) == 30 + 2  # the bad request never reached the model
    assert [status for status, _ in answers] == [422, 200, 422]
    assert len(answers[1][1]["predictions"]) == 2
    assert same_connection  # refusing it did not cost the client its keep-alive connection


def test_strings_that_are_not_unicode_are_refused_wherever_they_are(classifier_run: Path) -> None:
    bodies = {
        b'{"texts": ["fine", "ok \\udfff"]}': "texts.1 holds a lone surrogate (\\udfff) at character 3",
        b'{"texts": ["fine"], "user": {"name": ["\\ud83d"]}}': "user.name.0 holds a lone",
        b'{"texts": ["fine"], "\\ud800": 1}': "(a field name) holds a lone surrogate (\\ud800)",
    }
    with TestClient(create_app(classifier_run)) as client:
        for body, expected in bodies.items():
            message = one_line_error(client.post("/v1/predict", content=body, headers=JSON), 422)
            assert expected in message
        prompt = client.post("/v1/completions", content=b'{"prompt": "\\ud800"}', headers=JSON)
        not_utf8 = client.post("/v1/predict", content=b'{"texts": ["\xff\xfe"]}', headers=JSON)
        still = client.post("/v1/predict", json={"texts": ["fine"]})
    assert "prompt holds a lone surrogate" in one_line_error(prompt, 422)
    assert 400 <= not_utf8.status_code < 500 and "\n" not in not_utf8.json()["error"]["message"]
    assert still.status_code == 200


def failing_on(word: str, run_batch: Any) -> Any:
    """`run_batch` that raises for any batch holding `word` (in a text or its token ids)."""
    poison = TOY_VOCAB[word]

    def holds(item: Any) -> bool:
        return poison in item["input_ids"] if isinstance(item, dict) else word in item.split()

    def run(key: Any, items: list[Any]) -> list[Any]:
        if any(holds(item) for item in items):
            raise ValueError("a model that cannot take this text")
        return list(run_batch(key, items))

    return run


def test_a_failing_batch_is_rerun_one_request_at_a_time(
    classifier_run: Path, predictor: Any
) -> None:
    app = create_app(classifier_run, max_wait_ms=300)
    state = state_of(app)
    state.batcher.run_batch = failing_on(POISON, state.batcher.run_batch)
    sizes = record_calls(app)
    texts = [*TEXTS * 3, f"a {POISON} film"]

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        calls = [client.post("/v1/predict", json={"texts": [t]}) for t in texts]
        return list(await asyncio.gather(*calls))

    *good, bad = run_async(app, scenario)
    assert [r.status_code for r in good] == [200] * 12
    _, probabilities = predictor.predict(texts[:12])
    served = [
        [r.json()["predictions"][0]["probabilities"][n] for n in ("neg", "pos")] for r in good
    ]
    assert np.allclose(served, probabilities, atol=1e-6)
    assert "internal server error (ValueError) in the model call" in one_line_error(bad, 500)
    assert max(sizes) > 1 and sizes.count(1) >= 2  # a shared call failed; its requests reran alone


def test_non_finite_probabilities_are_a_500_never_nan_or_null(classifier_run: Path) -> None:
    app = create_app(classifier_run, max_wait_ms=300)
    served = state_of(app).served
    assert isinstance(served, ServedClassifier)
    scores, poison = served.predictor.scores, TOY_VOCAB[POISON]

    def diverged(batch: Any) -> np.ndarray:  # what a NaN-weighted model gives for some texts
        logits: np.ndarray = scores(batch)
        logits[(batch["input_ids"] == poison).any(-1)] = np.nan
        return logits

    served.predictor.scores = diverged

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        texts = [[TEXTS[0]], [TEXTS[1], f"so {POISON}"], [TEXTS[2]]]
        return list(
            await asyncio.gather(*(client.post("/v1/predict", json={"texts": t}) for t in texts))
        )

    first, broken, last = run_async(app, scenario)
    message = one_line_error(broken, 500)
    assert message.startswith("text 1: the model's probabilities for this text are not finite")
    assert list(broken.json()) == ["error"]  # no predictions, no nulls
    for fine in (first, last):
        assert fine.status_code == 200
        json.loads(fine.text, parse_constant=pytest.fail)  # strict JSON: no NaN, no Infinity


def chunks(total: int, sent: list[int], size: int = 65536) -> Iterator[bytes]:
    """A JSON body of `total` bytes, sent chunked (no Content-Length); `sent` counts what went."""
    head, tail = b'{"texts": ["', b'"]}'
    for start in range(0, total, size):
        piece = head if start == 0 else b"x" * size
        sent.append(len(piece))
        yield piece
    sent.append(len(tail))
    yield tail


def chunked_to(limit: int) -> bytes:
    """A request whose chunked body (no Content-Length) passes `limit` with its very last byte,
    so the server has read all that was sent when it refuses (a clean close, no reset)."""
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    sizes = [65536] * (limit // 65536) + [limit % 65536 + 1]
    return head + b"".join(b"%x\r\n%s\r\n" % (n, b"x" * n) for n in sizes)[:-2]


def answer(raw: bytes) -> tuple[int, dict[str, str], str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *fields = head.decode().split("\r\n")
    headers = dict(f.lower().split(": ", 1) for f in fields)
    message = json.loads(body)["error"]["message"]
    assert "\n" not in message
    return int(status.split()[1]), headers, message


def test_a_chunked_body_past_the_limit_is_refused_while_it_arrives(classifier_run: Path) -> None:
    app = create_app(classifier_run, max_items=1, max_chars=10)  # a body of ~1 MB at most
    limit = state_of(app).limits.max_body_bytes
    total, sent = 256 * 2**20, []  # 256 MB, which the server must never read whole
    with uvicorn_serving(app) as url:
        port = int(url.rsplit(":", 1)[1])
        status, headers, message = answer(answer_to_a_half_sent_head(port, chunked_to(limit)))
        try:  # a client still sending when the server closes may get a reset, not the 413
            outcome: Any = httpx.post(
                f"{url}/v1/predict", content=chunks(total, sent), headers=JSON
            )
        except httpx.TransportError as exc:
            outcome = exc
        declared = answer_to_a_half_sent_head(
            port,
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (limit + 1),
        )
        small = httpx.post(f"{url}/v1/predict", content=b'{"texts": ["fine"]}', headers=JSON)
    assert (status, headers["connection"]) == (413, "close")
    assert (
        message
        == f"the request body has more than {limit} bytes (refused at {limit + 1}); at most {limit} are taken. Send less per request."
    )
    assert isinstance(outcome, httpx.TransportError) or outcome.status_code == 413
    assert sum(sent) < total // 4  # the server stopped reading soon after the limit
    assert answer(declared)[::2] == (
        413,
        f"the request body has {limit + 1} bytes; at most {limit} are taken. Send less per request.",
    )
    assert small.status_code == 200


def test_slow_and_stalled_clients_get_408_and_are_closed(classifier_run: Path) -> None:
    app = create_app(classifier_run, body_timeout=0.5)
    with uvicorn_serving(app, header_timeout=0.5) as url:
        port = int(url.rsplit(":", 1)[1])
        silent = answer_to_a_half_sent_head(port, b"")
        slowloris = answer_to_a_half_sent_head(
            port, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-a: b"
        )
        slow_body = answer_to_a_half_sent_head(
            port,
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"texts": ["',
        )
        after_all = httpx.post(f"{url}/v1/predict", json={"texts": ["fine"]})
    for head in (silent, slowloris):
        assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        error = json.loads(head.split(b"\r\n\r\n", 1)[1])["error"]["message"]
        assert (
            error
            == "the request head (request line and headers) did not arrive within 0.5 s; send it whole."
        )
    assert slow_body.startswith(b"HTTP/1.1 408 ")
    error = json.loads(slow_body.split(b"\r\n\r\n", 1)[1])["error"]["message"]
    assert error.startswith("the request body did not arrive within 0.5 s (12 bytes came)")
    assert after_all.status_code == 200


def test_connections_past_limit_concurrency_get_503_until_they_close(classifier_run: Path) -> None:
    with uvicorn_serving(create_app(classifier_run), limit_concurrency=3) as url:
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
        try:
            crowded = httpx.get(f"{url}/health")
        finally:
            for connection in idle:
                connection.close()
        for _ in range(100):  # the server notices the closes as it gets to them
            spacious = httpx.get(f"{url}/health")
            if spacious.status_code == 200:
                break
            time.sleep(0.05)
    assert crowded.status_code == 503
    assert spacious.status_code == 200


def test_bad_guard_settings_are_refused_in_one_line(classifier_run: Path) -> None:
    from tunelab.serve.app import run_server

    with pytest.raises(ConfigError, match=r"--body-timeout must be at least 0.1; got 0"):
        create_app(classifier_run, body_timeout=0)
    with pytest.raises(
        ConfigError, match=r"(?s)--header-timeout must be at least 0.1.*--limit-concurrency"
    ):
        run_server(classifier_run, header_timeout=0, limit_concurrency=0)


def test_near_a_full_queue_new_connections_are_shed_and_known_ones_still_queue(
    classifier_run: Path,
) -> None:
    app = create_app(classifier_run, max_batch_size=1, max_wait_ms=0, queue_size=8)
    state = state_of(app)
    assert state.limits.shed_new_at == 6
    original, release = state.batcher.run_batch, threading.Event()

    def blocked(key: Any, items: list[Any]) -> list[Any]:
        release.wait(timeout=30)
        return list(original(key, items))

    state.batcher.run_batch = blocked
    body = json.dumps({"texts": ["fine"]}).encode()

    def post(connection: http.client.HTTPConnection, statuses: list[int]) -> None:
        connection.request("POST", "/v1/predict", body, JSON)
        answer = connection.getresponse()
        answer.read()
        statuses.append(answer.status)

    with uvicorn_serving(app) as url:
        port = int(url.rsplit(":", 1)[1])
        known = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(8)]
        for connection in known:  # each is answered once: a connection the server knows
            connection.request("GET", "/health")
            connection.getresponse().read()
        statuses: list[int] = []
        waiting = [threading.Thread(target=post, args=(c, statuses)) for c in known[:7]]
        for thread in waiting:
            thread.start()
        for _ in range(1000):  # one request in the (blocked) model, six waiting
            if state.batcher.depth() == 6:
                break
            time.sleep(0.01)
        new = httpx.post(f"{url}/v1/predict", content=body, headers=JSON)
        last_place = threading.Thread(target=post, args=(known[7], statuses))
        last_place.start()
        for _ in range(1000):
            if state.batcher.depth() == 7:
                break
            time.sleep(0.01)
        release.set()
        for thread in [*waiting, last_place]:
            thread.join(timeout=30)
        for connection in known:
            connection.close()
    assert "requests on new connections are refused" in one_line_error(new, 503)
    assert new.headers["retry-after"] == "1"
    assert statuses == [200] * 8  # the known connections all kept their place
