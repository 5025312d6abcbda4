"""`tunelab serve`: answers equal the library's, bad requests are clear 4xx, batching batches.

Each tiny run is trained once for the module. In-process tests use FastAPI's TestClient (with
the lifespan, so the batcher runs) or httpx's ASGITransport for true concurrency; two tests talk
to a real uvicorn over loopback: the CLI in a subprocess, and the `openai` client.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from test_cli import TUNELAB, assert_one_line_error, run

import tunelab
from conftest import toy_opposites, toy_sentiment
from tunelab.errors import ConfigError, RunDirError
from tunelab.inference.generator import Generator
from tunelab.inference.predictor import Predictor
from tunelab.runs import load_generator, load_predictor
from tunelab.serve import create_app
from tunelab.serve.guards import uvicorn_options
from tunelab.serve.state import ServerState
from tunelab.workflows.check import build_checked as build_config

TEXTS = ["a good film", "the plot was awful", "really boring acting", "fun"]
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("serve-cls")
    toy_sentiment(240).to_csv(root / "toy.csv", index=False)
    raw = {
        "data": {"train_file": str(root / "toy.csv"), "max_length": 16},
        "model": {"name": str(tiny_bert_dir)},
        "train": {"epochs": 2, "batch_size": 16, "lr": 5e-3, "precision": "fp32", "seed": 7},
        "eval": {"baselines": False, "forgetting": False},
        "output": {"dir": str(root / "runs"), "name": "cls"},
    }
    return tunelab.train(build_config(raw)).run_dir


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory: pytest.TempPathFactory, tiny_chat_llama_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("serve-sft")
    toy_opposites(240).to_json(root / "opposites.jsonl", orient="records", lines=True)
    raw = {
        "data": {"train_file": str(root / "opposites.jsonl"), "max_length": 64},
        "model": {"name": str(tiny_chat_llama_dir)},
        "task": {"type": "causal_lm"},
        "train": {"epochs": 6, "batch_size": 16, "lr": 5e-3, "precision": "fp32", "seed": 3},
        "eval": {"generate_rows": 0, "generate_before": False, "forgetting": False},
        "output": {"dir": str(root / "runs"), "name": "sft"},
    }
    return tunelab.train(build_config(raw)).run_dir


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory: pytest.TempPathFactory, tiny_t5_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("serve-s2s")
    toy_opposites(240).to_json(root / "opposites.jsonl", orient="records", lines=True)
    raw = {
        "data": {"train_file": str(root / "opposites.jsonl"), "max_length": 32},
        "model": {"name": str(tiny_t5_dir)},
        "task": {"type": "seq2seq", "max_target_length": 8, "source_prefix": "opposite "},
        "train": {"epochs": 6, "batch_size": 16, "lr": 5e-3, "precision": "fp32", "seed": 3},
        "eval": {"generate_rows": 0, "generate_before": False, "forgetting": False},
        "output": {"dir": str(root / "runs"), "name": "s2s"},
    }
    return tunelab.train(build_config(raw)).run_dir


@pytest.fixture(scope="module")
def predictor(classifier_run: Path) -> Predictor:
    return load_predictor(classifier_run)


@pytest.fixture(scope="module")
def generator(chat_run: Path) -> Generator:
    return load_generator(chat_run)


def state_of(app: FastAPI) -> ServerState:
    state: ServerState = app.state.tunelab
    return state


def run_async(app: FastAPI, scenario: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    """Run `scenario` against the app in one event loop, lifespan (the batcher) included."""

    async def main() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
                return await scenario(client)

    return asyncio.run(main())


def record_calls(app: FastAPI) -> list[int]:
    """Wrap the model call so the test sees how many texts each call got."""
    state = state_of(app)
    original, sizes = state.batcher.run_batch, []

    def recording(key: Any, items: list[Any]) -> list[Any]:
        sizes.append(len(items))
        return original(key, items)

    state.batcher.run_batch = recording
    return sizes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_health(url: str, ready: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and ready():
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer /health within {timeout} s")


@contextmanager
def uvicorn_serving(app: FastAPI, **guards: Any) -> Iterator[str]:
    """A real uvicorn on a free loopback port, in a thread of this process, with the connection
    guards `tunelab serve` runs it with (`guards` override their settings)."""
    import uvicorn

    port = free_port()
    options = uvicorn_options(**guards)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, thread.is_alive, timeout=30)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def answer_to_a_half_sent_head(port: int, sent: bytes = b"POST /v1/predict HTTP/1.1\r\n") -> bytes:
    """What a client that sends `sent` and then stalls gets before the server closes on it."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
        client.sendall(sent)
        received = b""
        while chunk := client.recv(65536):  # b"" once the server has closed the connection
            received += chunk
    return received


def test_predict_answers_what_the_predictor_does(classifier_run: Path, predictor) -> None:
    with TestClient(create_app(classifier_run)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        info = client.get("/v1/model").json()
        response = client.post("/v1/predict", json={"texts": TEXTS})
    assert info["task"] == "classification" and info["labels"] == ["neg", "pos"]
    assert info["path"] == str(classifier_run.resolve()) and info["max_length"] == 16
    assert info["limits"]["max_items"] == 64 and info["export"] is None
    assert response.status_code == 200
    body = response.json()
    ids, probabilities = predictor.predict(TEXTS)
    assert body["model"] == classifier_run.name
    assert [p["label"] for p in body["predictions"]] == [predictor.labels.names[i] for i in ids]
    served = np.array(
        [[p["probabilities"][n] for n in ("neg", "pos")] for p in body["predictions"]]
    )
    assert np.allclose(served, probabilities, atol=1e-6)
    assert np.allclose([p["probability"] for p in body["predictions"]], probabilities.max(-1))


def test_bad_requests_get_a_clear_4xx_in_openai_shape(classifier_run: Path) -> None:
    app = create_app(classifier_run, max_items=3, max_chars=20)
    with TestClient(app) as client:

        def refused(status: int, **request: Any) -> str:
            response = client.post("/v1/predict", **request)
            assert response.status_code == status, response.text
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and "\n" not in error["message"]
            return str(error["message"])

        assert "at least 1 item" in refused(422, json={"texts": []})
        assert "text 1 is empty" in refused(422, json={"texts": ["good", "  "]})
        assert "not valid JSON" in refused(
            422, content=b'{"texts": [', headers={"content-type": "application/json"}
        )
        assert "texts.0: Input should be a valid string" in refused(422, json={"texts": [3]})
        assert "must be a JSON object" in refused(422, json=["good"])
        assert "4 texts in one request" in refused(413, json={"texts": ["good"] * 4})
        assert "text 1 has 21 characters" in refused(413, json={"texts": ["ok", "x" * 21]})
        generative_only = client.post("/v1/completions", json={"prompt": "good"})
        missing = client.get("/v2/nothing")
    assert generative_only.status_code == 400
    assert "POST /v1/predict" in generative_only.json()["error"]["message"]
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_an_api_key_guards_every_route_but_health(classifier_run: Path) -> None:
    body = {"json": {"texts": ["good"]}}
    with TestClient(create_app(classifier_run, api_key=KEY)) as client:
        assert client.get("/health").status_code == 200
        missing = client.post("/v1/predict", **body)
        wrong = client.post("/v1/predict", headers={"Authorization": "Bearer nope"}, **body)
        bearer = client.post("/v1/predict", headers={"Authorization": f"Bearer {KEY}"}, **body)
        header = client.post("/v1/predict", headers={"X-API-Key": KEY}, **body)
        metrics = client.get("/metrics")
        docs = client.get("/docs")
    assert missing.status_code == 401 and "needs an API key" in missing.json()["error"]["message"]
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert bearer.status_code == 200 and header.status_code == 200
    assert metrics.status_code == 401 and docs.status_code == 404
    with pytest.raises(ConfigError, match="API key is empty"):
        create_app(classifier_run, api_key=" ")


def test_metrics_count_requests_by_route_and_status(classifier_run: Path) -> None:
    with TestClient(create_app(classifier_run)) as client:
        for _ in range(2):
            assert client.post("/v1/predict", json={"texts": TEXTS[:2]}).status_code == 200
        assert client.post("/v1/predict", json={"texts": []}).status_code == 422
        exposition = client.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }
    route = ("route", "/v1/predict")
    assert samples[("tunelab_requests_total", (route, ("status", "200")))] == 2
    assert samples[("tunelab_requests_total", (route, ("status", "422")))] == 1
    assert samples[("tunelab_request_seconds_count", (route,))] == 3
    assert samples[("tunelab_batch_size_count", ())] == 2  # the 422 never reached the model
    assert samples[("tunelab_batch_size_sum", ())] == 4
    assert samples[("tunelab_queue_depth", ())] == 0


def concurrent_predictions(app: FastAPI, texts: list[str]) -> list[dict[str, Any]]:
    async def scenario(client: httpx.AsyncClient) -> list[dict[str, Any]]:
        responses = await asyncio.gather(
            *(client.post("/v1/predict", json={"texts": [t]}) for t in texts)
        )
        assert all(r.status_code == 200 for r in responses)
        return [r.json()["predictions"][0] for r in responses]

    result: list[dict[str, Any]] = run_async(app, scenario)
    return result


def test_concurrent_requests_share_model_calls_and_get_their_own_answers(
    classifier_run: Path, predictor
) -> None:
    texts = [f"{TEXTS[i % 4]} {'very ' * (i // 4)}".strip() for i in range(16)]
    app = create_app(classifier_run, max_wait_ms=500)
    sizes = record_calls(app)
    answers = concurrent_predictions(app, texts)
    registry = state_of(app).metrics.registry
    assert len(sizes) < 16 and sum(sizes) == 16
    assert registry.get_sample_value("tunelab_batch_size_count") == len(sizes)
    assert registry.get_sample_value("tunelab_batch_requests_sum") == 16
    _, probabilities = predictor.predict(texts)  # each request got its own slice
    served = [[a["probabilities"]["neg"], a["probabilities"]["pos"]] for a in answers]
    assert np.allclose(served, probabilities, atol=1e-6)


def test_max_batch_size_1_serves_one_request_per_model_call(classifier_run: Path) -> None:
    app = create_app(classifier_run, max_batch_size=1, max_wait_ms=500)
    sizes = record_calls(app)
    concurrent_predictions(app, TEXTS * 2)
    registry = state_of(app).metrics.registry
    assert sizes == [1] * 8
    assert registry.get_sample_value("tunelab_batch_requests_count") == 8
    assert registry.get_sample_value("tunelab_batch_requests_sum") == 8


def test_a_full_queue_answers_503_and_the_rest_complete(classifier_run: Path) -> None:
    app = create_app(classifier_run, max_batch_size=1, max_wait_ms=0, queue_size=1)
    state = state_of(app)
    original, entered, release = state.batcher.run_batch, threading.Event(), threading.Event()

    def blocked(key: Any, items: list[Any]) -> list[Any]:
        entered.set()
        release.wait(timeout=30)
        return original(key, items)

    state.batcher.run_batch = blocked

    async def scenario(client: httpx.AsyncClient) -> None:
        async def until(condition: Callable[[], bool]) -> None:
            for _ in range(500):
                if condition():
                    return
                await asyncio.sleep(0.01)
            raise AssertionError("timed out")

        body = {"json": {"texts": ["good"]}}
        running = asyncio.create_task(client.post("/v1/predict", **body))
        await until(entered.is_set)  # the model holds the first request
        waiting = asyncio.create_task(client.post("/v1/predict", **body))
        await until(lambda: state.batcher.depth() == 1)  # the second fills the queue
        rejected = await client.post("/v1/predict", **body)
        assert rejected.status_code == 503 and rejected.headers["retry-after"] == "1"
        assert "busy" in rejected.json()["error"]["message"]
        release.set()
        assert (await running).status_code == 200 and (await waiting).status_code == 200

    run_async(app, scenario)


def test_runs_it_cannot_serve_are_refused_before_binding(
    classifier_run: Path, tmp_path: Path
) -> None:
    masked = tmp_path / "mlm-run"
    masked.mkdir()
    shutil.copy(classifier_run / "config.yaml", masked / "config.yaml")
    card = (classifier_run / "run_card.json").read_text()
    (masked / "run_card.json").write_text(card.replace('"classification"', '"masked_lm"'))
    with pytest.raises(RunDirError, match="is a masked_lm run; `tunelab serve` serves"):
        create_app(masked)
    with pytest.raises(RunDirError, match="is not a directory"):
        create_app(tmp_path / "missing")
    with pytest.raises(
        ConfigError, match=r"(?s)--max-batch-size must be at least 1; got 0.*--queue-size"
    ):
        create_app(classifier_run, max_batch_size=0, queue_size=0)
    assert_one_line_error(run("serve", str(masked), "--port", str(free_port())), "masked_lm run")


def test_the_cli_serves_over_loopback_with_a_key_from_the_environment(
    classifier_run: Path, predictor
) -> None:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNELAB_API_KEY": KEY, "COLUMNS": "200"}
    process = subprocess.Popen(
        [TUNELAB, "serve", str(classifier_run), "--port", str(port), "--header-timeout", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, lambda: process.poll() is None)
        headers = {"Authorization": f"Bearer {KEY}"}
        answer = httpx.post(f"{url}/v1/predict", json={"texts": TEXTS}, headers=headers)
        unauthorized = httpx.post(f"{url}/v1/predict", json={"texts": TEXTS})
        stalled = answer_to_a_half_sent_head(port)  # the CLI runs uvicorn with its guards
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C: uvicorn shuts down gracefully
        out, err = process.communicate(timeout=30)
    assert answer.status_code == 200, answer.text
    assert unauthorized.status_code == 401
    ids, _ = predictor.predict(TEXTS)
    labels = [p["label"] for p in answer.json()["predictions"]]
    assert labels == [predictor.labels.names[i] for i in ids]
    assert stalled.startswith(b"HTTP/1.1 408 ") and b"did not arrive within 0.5 s" in stalled
    assert f"at {url} (POST /v1/predict" in out and "API key required" in out
    assert process.returncode == 0 and "Traceback" not in err


def test_the_openai_client_gets_what_the_generator_writes(
    chat_run: Path, generator: Generator
) -> None:
    import openai

    question = "opposite of good"
    conversation = [
        {"role": "system", "content": "answer words"},
        {"role": "user", "content": "opposite of sad"},
        {"role": "assistant", "content": "fun"},
        {"role": "user", "content": question},
    ]
    expected = generator.generate([question], max_new_tokens=4)[0]
    expected_turns = generator.generate_prompts(
        [generator.render_messages(conversation)], max_new_tokens=4
    )[0]
    with uvicorn_serving(create_app(chat_run, api_key=KEY)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        chat = client.chat.completions.create(
            model="sft",
            messages=[{"role": "user", "content": question}],
            max_tokens=4,
            temperature=0,
            seed=1,  # an option this server ignores: accepted, not refused
        )
        turns = client.chat.completions.create(
            model="sft", messages=conversation, max_completion_tokens=4
        )
        completion = client.completions.create(model="sft", prompt=question, max_tokens=4)
        models = client.models.list()
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).completions.create(
                model="sft", prompt=question
            )
        streamed = client.chat.completions.create(
            model="sft",
            messages=[{"role": "user", "content": question}],
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(streamed)
        with httpx.stream(
            "POST",
            f"{url}/v1/completions",
            json={"prompt": question, "max_tokens": 4, "stream": True},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as raw:
            events = [line[6:] for line in raw.iter_lines() if line.startswith("data: ")]
        with pytest.raises(openai.BadRequestError, match="not supported with stream=true"):
            client.completions.create(model="sft", prompt=question, stream=True, stop=["x"])
    assert expected.strip()
    assert chat.choices[0].message.content == expected
    assert chat.choices[0].message.role == "assistant" and chat.object == "chat.completion"
    assert turns.choices[0].message.content == expected_turns
    assert completion.choices[0].text == expected and completion.object == "text_completion"
    assert chat.model == chat_run.name and [m.id for m in models.data] == [chat_run.name]
    assert chat.usage is not None and chat.usage.prompt_tokens == generator.count_tokens(
        generator.prompt(question), prompt=True
    )
    assert chat.usage.completion_tokens == generator.count_tokens(expected) > 0
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens
    # What a stream promises (how the tokenizer splits the text into pieces is its own affair):
    # the role first, then content pieces that add up to the non-streamed answer, then one
    # chunk with the finish reason, the usage, and the [DONE] sentinel.
    choices = [c.choices[0] for c in chunks if c.choices]
    assert choices[0].delta.role == "assistant"
    deltas = [c.delta.content for c in choices if c.delta.content]
    assert deltas and "".join(deltas).strip() == expected == chat.choices[0].message.content
    assert [c.finish_reason for c in choices] == [None] * (len(choices) - 1) + ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage == chat.usage
    assert events[-1] == "[DONE]"
    pieces = [json.loads(e)["choices"] for e in events[:-1]]
    assert "".join(c[0]["text"] for c in pieces).strip() == completion.choices[0].text
    assert pieces[-1][0]["finish_reason"] == "stop"


def test_generation_requests_share_calls_and_refuse_what_they_cannot_do(
    chat_run: Path, generator: Generator
) -> None:
    prompts = ["opposite of good", "opposite of sad", "opposite of fun dull", "opposite of bad"]
    expected = generator.generate(prompts, batch_size=32, max_new_tokens=3)
    app = create_app(chat_run, max_wait_ms=500)
    sizes = record_calls(app)

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        requests = [
            client.post("/v1/completions", json={"prompt": p, "max_tokens": 3}) for p in prompts
        ]
        requests.append(client.post("/v1/completions", json={"prompt": "good", "max_tokens": 1}))
        return list(await asyncio.gather(*requests))

    *same, other = run_async(app, scenario)
    assert [r.json()["choices"][0]["text"] for r in same] == expected
    assert sorted(sizes) == [1, 4]  # equal settings share a call, different ones do not
    assert other.json()["choices"][0]["finish_reason"] == "length"
    with TestClient(app) as client:
        too_long = client.post("/v1/completions", json={"prompt": "good " * 80})
        several = client.post("/v1/completions", json={"prompt": "good", "n": 2})
        image = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        )
        classify = client.post("/v1/predict", json={"texts": ["good"]})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "context_length_exceeded"
    assert several.status_code == 400 and "n=2" in several.json()["error"]["message"]
    assert image.status_code == 422 and "only text content" in image.json()["error"]["message"]
    assert classify.status_code == 400 and "/v1/chat/completions" in classify.text


def test_a_stream_stops_when_asked(generator: Generator) -> None:
    class Counter:  # the streamer interface transformers calls: put per step, end once
        def __init__(self) -> None:
            self.steps = 0

        def put(self, value: Any) -> None:
            self.steps += 1

        def end(self) -> None:
            pass

    prompt = generator.prompt("opposite of good")
    full, stopped = Counter(), Counter()
    generator.stream(prompt, full, generator.generation_config(max_new_tokens=8))
    generator.stream(prompt, stopped, generator.generation_config(max_new_tokens=8), lambda: True)
    assert full.steps > 2 and stopped.steps == 2  # the prompt, then one token


def test_a_seq2seq_run_answers_one_text_laid_out_with_its_prefix(seq2seq_run: Path) -> None:
    generator = load_generator(seq2seq_run)
    expected = generator.generate(["of good"], max_new_tokens=4)[0]
    assert generator.prompt("of good") == "opposite of good"
    user = [{"role": "user", "content": "of good"}]
    with TestClient(create_app(seq2seq_run)) as client:
        info = client.get("/v1/model").json()
        completion = client.post("/v1/completions", json={"prompt": "of good", "max_tokens": 4})
        chat = client.post("/v1/chat/completions", json={"messages": user, "max_tokens": 4})
        with client.stream(
            "POST", "/v1/completions", json={"prompt": "of good", "max_tokens": 4, "stream": True}
        ) as streamed:
            events = [line for line in streamed.iter_lines() if line.startswith("data: ")]
        conversation = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "system", "content": "answer"}, *user]},
        )
    assert info["task"] == "seq2seq" and info["chat"] is False and expected
    assert completion.json()["choices"][0]["text"] == expected
    assert chat.json()["choices"][0]["message"]["content"] == expected
    assert events[-1] == "data: [DONE]"
    pieces = [json.loads(e[6:])["choices"][0]["text"] for e in events[:-1]]
    assert "".join(pieces).strip() == expected
    assert conversation.status_code == 400 and "takes one user message" in conversation.text
