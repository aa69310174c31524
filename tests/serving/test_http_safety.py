"""Raw HTTP against the server: oversized bodies (with and without Content-Length, chunked) get 413 and are never
buffered, malformed JSON 400, wrong types 422, an API key guards every route but /health (401 in OpenAI's shape),
a client that disconnects mid-stream or mid-request stops its generation, and the server answers after each."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlparse

import httpx
import openai
import pytest

from scripts.serving.app import create_app
from scripts.serving.engine import Engine

from .conftest import running_server, slow_copy

LIMIT = 2_000


@pytest.fixture(scope="module")
def guarded(ours):
    """A server with an API key and a small body limit; yields (url, engine)."""
    engine = Engine(ours)
    with running_server(create_app(engine, api_key="sekret", max_request_bytes=LIMIT, max_tokens_default=8)) as url:
        yield url, engine


def auth(key: str = "sekret") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def assert_alive(url: str) -> None:
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"


def test_oversized_bodies_get_413(guarded):
    url, _ = guarded
    big = json.dumps({"prompt": "x" * (LIMIT * 20), "model": "tiny"}).encode()
    with_length = httpx.post(f"{url}/v1/completions", content=big, headers=auth(), timeout=30)
    assert "limit of 2000 bytes" in assert_openai_error(with_length, 413)["message"]

    def chunks():  # chunked transfer: no Content-Length, counted as it arrives
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    chunked = httpx.post(f"{url}/v1/completions", content=chunks(), headers=auth(), timeout=30)
    assert_openai_error(chunked, 413)
    # unauthenticated and too large: still answered (413), not a reset connection
    assert httpx.post(f"{url}/v1/completions", content=chunks(), timeout=30).status_code == 413
    assert_alive(url)


def test_raw_chunked_body_over_the_limit_is_answered_on_the_socket(guarded):
    """A hand-written chunked upload past the limit: the socket reads a 413 (not a reset), the server stays up."""
    url, _ = guarded
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        head = ("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(head.encode())
        for _ in range(5):
            piece = b"a" * 1000
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413")
    assert_alive(url)


def test_malformed_and_wrongly_typed_bodies(guarded):
    url, _ = guarded
    garbage = httpx.post(f"{url}/v1/chat/completions", content=b"\x00\xff{not json", headers={
        **auth(), "Content-Type": "application/json"}, timeout=10)
    assert assert_openai_error(garbage, 400)["code"] == "json_invalid"
    cases = [({"messages": "hello"}, "messages"), ({"messages": [{"role": "user", "content": 5}]}, "messages"),
             ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}, "max_tokens"),
             ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream"),
             ({"messages": []}, "messages")]
    for body, param in cases:
        error = assert_openai_error(httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth(),
                                               timeout=10), 422)
        assert error["param"].startswith(param), (body, error)
    assert assert_openai_error(httpx.post(f"{url}/predict", json=[1, 2], headers=auth(), timeout=10), 422)
    assert_openai_error(httpx.post(f"{url}/predict", json={"question": 3}, headers=auth(), timeout=10), 422)
    assert_openai_error(httpx.get(f"{url}/v2/nothing", headers=auth(), timeout=10), 404)
    assert_openai_error(httpx.get(f"{url}/v1/chat/completions", headers=auth(), timeout=10), 405)
    assert_alive(url)


def test_api_key_guards_every_route_but_health(guarded):
    url, _ = guarded
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/predict")):
        missing = httpx.request(method, f"{url}{path}", json={"question": "hi"}, timeout=10)
        assert assert_openai_error(missing, 401)["type"] == "authentication_error"
        wrong = httpx.request(method, f"{url}{path}", json={"question": "hi"}, headers=auth("nope"), timeout=10)
        assert_openai_error(wrong, 401)
    assert httpx.get(f"{url}/v1/models", headers=auth(), timeout=10).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
    good = openai.OpenAI(base_url=f"{url}/v1", api_key="sekret", max_retries=0)
    reply = good.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert reply.usage.completion_tokens >= 1
    predicted = httpx.post(f"{url}/predict", json={"question": "the king"}, headers=auth(), timeout=30)
    assert predicted.status_code == 200 and isinstance(predicted.json()["response"], str)


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_disconnect_stops_generation(ours):
    engine = Engine(slow_copy(ours, 0.02), max_batch_size=4)
    with running_server(create_app(engine, max_tokens_default=200)) as url:
        body = {"model": "tiny", "prompt": "the king", "max_tokens": 200, "temperature": 0, "stream": True}
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as response:
            lines = response.iter_lines()
            seen = [line for line, _ in zip(lines, range(6), strict=False)]
        assert any(line.startswith("data:") for line in seen)
        wait_for(lambda: len(engine.batch_steps) == 1)
        assert engine.batch_steps[0] < 150  # 200 steps would take 4 s; the stream stopped soon after the close
        with pytest.raises(httpx.ReadTimeout):  # a plain request whose client gives up
            httpx.post(f"{url}/v1/completions", json={**body, "stream": False}, timeout=0.5)
        wait_for(lambda: len(engine.batch_steps) == 2)
        assert engine.batch_steps[1] < 150
        after = httpx.post(f"{url}/v1/completions", json={**body, "stream": False, "max_tokens": 3}, timeout=30)
        assert after.json()["usage"]["completion_tokens"] == 3
        assert_alive(url)
