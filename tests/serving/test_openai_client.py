"""The official openai client against the server: chat and text completions, plain and streamed (ending with
[DONE], usage counted), greedy output that equals the model's own generate, stop strings, seeds, model listing,
adapter selection on a transformers Llama, and error shapes (unknown model, n > 1, too long)."""

from __future__ import annotations

import openai
import pytest
import torch

from scripts.serving.app import create_app
from scripts.serving.engine import Engine

from .conftest import load_hf_served, running_server


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)


def direct_greedy(served, messages, max_tokens):
    """The reply text the model's own generate gives (greedy), as the server should return it."""
    ids = served.encode_chat(messages)
    out = served.model.generate(torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
                                eos_token_id=served.eos_token_ids)
    new = out[0, len(ids):].tolist()
    cut = next((i for i, t in enumerate(new) if t in served.eos_token_ids), len(new))
    return served.tokenizer.decode(new[:cut], skip_special_tokens=True), new


def test_chat_plain_and_streamed_equal_generate(ours, ours_url):
    messages = [{"role": "user", "content": "the king spoke to the people"}]
    api = client(ours_url)
    reply = api.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=12)
    expected, _ = direct_greedy(ours, messages, 12)
    assert reply.choices[0].message.content == expected
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage.prompt_tokens == len(ours.encode_chat(messages))
    assert 1 <= reply.usage.completion_tokens <= 12
    assert reply.choices[0].finish_reason == ("length" if reply.usage.completion_tokens == 12 else "stop")
    chunks = list(api.chat.completions.create(model="base", messages=messages, temperature=0, max_tokens=12,
                                              stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected
    assert chunks[-1].choices[0].finish_reason == reply.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens


def test_raw_stream_ends_with_done(ours_url):
    import httpx

    body = {"model": "tiny", "prompt": "the river", "max_tokens": 5, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{ours_url}/v1/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line[5:].strip() for line in response.iter_lines() if line.startswith("data:")]
    assert data[-1] == "[DONE]" and len(data) >= 3


def test_text_completion_stop_and_seed(ours, ours_url):
    api = client(ours_url)
    plain = api.completions.create(model="tiny", prompt="the queen of", max_tokens=16, temperature=0)
    text = plain.choices[0].text
    assert plain.object == "text_completion" and text
    stop = text[len(text) // 2: len(text) // 2 + 2] if len(text) >= 4 else text[-1]
    cut = api.completions.create(model="tiny", prompt="the queen of", max_tokens=16, temperature=0, stop=[stop])
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    sampled = [api.completions.create(model="tiny", prompt="the queen of", max_tokens=10, temperature=1.0,
                                      top_p=0.9, seed=7).choices[0].text for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_models_and_error_shapes(ours, ours_url):
    api = client(ours_url)
    assert [m.id for m in api.models.list().data] == ["tiny"]
    with pytest.raises(openai.NotFoundError) as missing:
        api.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    error = missing.value.body
    assert error["code"] == "model_not_found" and "tiny" in error["message"] and error["param"] == "model"
    with pytest.raises(openai.BadRequestError) as many:
        api.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], n=2)
    assert many.value.body["param"] == "n" and "not supported" in many.value.body["message"]
    with pytest.raises(openai.BadRequestError) as long:
        api.completions.create(model="tiny", prompt="the king", max_tokens=ours.context_length)
    message = long.value.body["message"]
    assert str(ours.context_length) in message and "max_tokens" in message
    with pytest.raises(openai.BadRequestError) as huge:
        api.completions.create(model="tiny", prompt="the king " * 400, max_tokens=4)
    assert huge.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.UnprocessableEntityError) as typed:
        api.completions.create(model="tiny", prompt="x", max_tokens=4, temperature="hot")
    assert typed.value.body["param"] == "temperature"


@pytest.mark.slow
def test_adapter_selection_on_a_transformers_llama(hf_with_adapters):
    served = load_hf_served(hf_with_adapters)
    messages = [{"role": "user", "content": "Does the gene study show an effect?"}]
    with running_server(create_app(Engine(served), max_tokens_default=8)) as url:
        api = client(url)
        names = [m.id for m in api.models.list().data]
        assert names == ["base", "eli5", "terse"] or names == [served.name, "eli5", "terse"]
        replies = {name: api.chat.completions.create(model=name, messages=messages, temperature=0,
                                                     max_tokens=8).choices[0].message.content
                   for name in (served.name, "eli5", "terse", "base")}
        streamed = "".join(c.choices[0].delta.content or "" for c in api.chat.completions.create(
            model="eli5", messages=messages, temperature=0, max_tokens=8, stream=True) if c.choices)
    assert replies["base"] == replies[served.name]
    assert len({replies[served.name], replies["eli5"], replies["terse"]}) == 3
    assert streamed == replies["eli5"]
    with served.adapter_set.using("terse") as model:  # what peft alone gives with that adapter
        ids = served.encode_chat(messages)
        out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                             eos_token_id=served.eos_token_ids, pad_token_id=served.pad_token_id)
    new = out[0, len(ids):].tolist()
    cut = next((i for i, t in enumerate(new) if t in served.eos_token_ids), len(new))
    assert replies["terse"] == served.tokenizer.decode(new[:cut], skip_special_tokens=True)
