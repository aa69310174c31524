"""The engine: requests that arrive together are batched (left-padded) and each row gets exactly what it gets
alone (greedy), for our decoder and a transformers Llama; rows stop at their own max_tokens and stop strings;
incompatible settings and seeded requests run in their own batches; concurrent HTTP requests are all served."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from scripts.serving.app import create_app
from scripts.serving.engine import Engine, Finished, GenerationRequest, collect

from .conftest import load_hf_served, running_server

PROMPTS = ["the king", "a grey sky over the old mill", "Cells divide", "the river ran past the castle and"]
TOKENS = 10


def run_together(engine: Engine, requests: list[GenerationRequest]) -> list[tuple[str, Finished]]:
    """Submit every request while the worker is held (so they share batches), then collect each result."""

    async def main():
        with engine.held():
            tickets = [engine.submit(r) for r in requests]
        return await asyncio.gather(*(collect(t) for t in tickets))

    engine.start()
    try:
        return asyncio.run(main())
    finally:
        engine.stop()


def greedy(served, prompt: str, max_tokens: int = TOKENS, **options) -> GenerationRequest:
    return GenerationRequest(served.encode_text(prompt), max_tokens, **options)


def check_batched_equals_single(served) -> None:
    engine = Engine(served, max_batch_size=8)
    alone = [run_together(engine, [greedy(served, p)])[0] for p in PROMPTS]
    assert engine.batch_sizes == [1] * len(PROMPTS)
    together = run_together(engine, [greedy(served, p) for p in PROMPTS])
    assert engine.batch_sizes[len(PROMPTS):] == [len(PROMPTS)]
    assert [(text, done.reason, done.completion_tokens) for text, done in together] == [
        (text, done.reason, done.completion_tokens) for text, done in alone]
    assert len({text for text, _ in alone}) > 1  # the prompts give different texts


def test_batched_greedy_equals_single_for_ours(ours):
    check_batched_equals_single(ours)


@pytest.mark.slow
def test_batched_greedy_equals_single_for_a_transformers_llama(hf_with_adapters):
    served = load_hf_served(hf_with_adapters, adapters=False)
    assert served.batched
    check_batched_equals_single(served)


def test_rows_stop_on_their_own(ours):
    engine = Engine(ours)
    full_text, _ = run_together(engine, [greedy(ours, PROMPTS[0], 16, stop=[])])[0]
    stop = full_text[6:8]
    results = run_together(engine, [greedy(ours, PROMPTS[0], 16), greedy(ours, PROMPTS[0], 4),
                                    greedy(ours, PROMPTS[0], 16, stop=[stop])])
    assert engine.batch_sizes[-1] == 3
    (first, done_first), (short, done_short), (cut, done_cut) = results
    assert first == full_text and done_first.completion_tokens == 16 and done_first.reason == "length"
    assert done_short.completion_tokens == 4 and done_short.reason == "length" and full_text.startswith(short)
    assert cut == full_text[: full_text.index(stop)] and done_cut.reason == "stop"


def test_incompatible_settings_and_seeds_get_their_own_batches(ours):
    engine = Engine(ours, max_batch_size=2)
    requests = [greedy(ours, PROMPTS[0]), greedy(ours, PROMPTS[1], temperature=0.8),
                greedy(ours, PROMPTS[2]), greedy(ours, PROMPTS[3], temperature=0.8),
                greedy(ours, PROMPTS[0], temperature=0.8, seed=3), greedy(ours, PROMPTS[0], temperature=0.8, seed=3),
                greedy(ours, PROMPTS[1])]
    results = run_together(engine, requests)
    # greedy pair, sampled pair, each seeded request alone, the last greedy one (the batch limit is 2)
    assert engine.batch_sizes == [2, 2, 1, 1, 1]
    assert results[4][0] == results[5][0]  # a seed reproduces its sample


def test_a_busy_engine_waits_briefly_for_the_next_requests(ours):
    """After a batch of several rows, a new batch waits batch_wait_s for requests arriving just after."""
    engine = Engine(ours, max_batch_size=4, batch_wait_s=0.5)

    async def main():
        with engine.held():
            warm = [engine.submit(greedy(ours, p, 2)) for p in PROMPTS[:2]]
        await asyncio.gather(*(collect(t) for t in warm))
        first = engine.submit(greedy(ours, PROMPTS[0], 2))
        await asyncio.sleep(0.05)  # the next client is a little late
        second = engine.submit(greedy(ours, PROMPTS[1], 2))
        return await asyncio.gather(collect(first), collect(second))

    engine.start()
    try:
        asyncio.run(main())
    finally:
        engine.stop()
    assert engine.batch_sizes == [2, 2]


def test_concurrent_http_requests_are_batched_and_all_served(ours):
    engine = Engine(ours, max_batch_size=8)
    with running_server(create_app(engine, max_tokens_default=8)) as url:
        answers: dict[int, dict] = {}

        def ask(i: int) -> None:
            body = {"model": "tiny", "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": 8, "temperature": 0}
            answers[i] = httpx.post(f"{url}/v1/completions", json=body, timeout=60).json()

        with engine.held():
            threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
            for thread in threads:
                thread.start()
            deadline = threading.Event()
            for _ in range(500):
                if engine.waiting() == 6:
                    break
                deadline.wait(0.01)
        for thread in threads:
            thread.join(60)
        alone = httpx.post(f"{url}/v1/completions", json={"model": "tiny", "prompt": PROMPTS[1], "max_tokens": 8,
                                                          "temperature": 0}, timeout=60).json()
    assert engine.batch_sizes == [6, 1]
    assert all(answers[i]["usage"]["completion_tokens"] >= 1 for i in range(6))
    assert answers[1]["choices"][0]["text"] == answers[5]["choices"][0]["text"] == alone["choices"][0]["text"]
