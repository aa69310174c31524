"""apply_chat_template: ChatML by default, an HF folder's own Jinja template rendered as transformers does."""

from __future__ import annotations

import json

import pytest

from tokenizers_bpe import BPETokenizer

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is BPE?"},
    {"role": "assistant", "content": "Byte pair encoding."},
    {"role": "user", "content": "Thanks 😀"},
]


def test_chatml_default_text_and_ids(small_tokenizer):
    text = small_tokenizer.apply_chat_template(MESSAGES[:2], add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is BPE?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = small_tokenizer.apply_chat_template(MESSAGES[:2], add_generation_prompt=True, tokenize=True)
    assert ids == small_tokenizer.encode(text) and ids.count(1) == 3 and ids.count(2) == 2
    assert not small_tokenizer.apply_chat_template(MESSAGES[:1]).endswith("assistant\n")


@pytest.mark.parametrize("messages", [MESSAGES, MESSAGES[1:], MESSAGES[1:2]])
@pytest.mark.parametrize("generation", [False, True])
def test_smollm2_template_matches_transformers(our_smollm2, smollm2_dir, messages, generation):
    transformers = pytest.importorskip("transformers")
    hf = _auto(transformers, smollm2_dir)
    expected = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    assert our_smollm2.apply_chat_template(messages, add_generation_prompt=generation) == expected
    if messages[0]["role"] != "system":
        assert "You are a helpful AI assistant named SmolLM" in expected  # the folder's template, not ChatML
    ids = our_smollm2.apply_chat_template(messages, add_generation_prompt=generation, tokenize=True)
    assert ids == hf.encode(expected, add_special_tokens=False)


def _auto(transformers, folder, _cache={}):  # noqa: B006 (a deliberate per-process cache)
    if folder not in _cache:
        _cache[folder] = transformers.AutoTokenizer.from_pretrained(str(folder))
    return _cache[folder]


def test_template_variables_exceptions_and_trim_blocks(small_tokenizer, tmp_path):
    template = (
        "{% if messages[0]['role'] == 'tool' %}{{ raise_exception('no tools here') }}{% endif %}\n"
        "{{ bos_token }}\n"
        "{% for m in messages %}\n"
        "    {% if m['role'] == 'user' %}\n"
        "[U]{{ m['content'] }}{{ eos_token }}\n"
        "    {% endif %}\n"
        "{% endfor %}"
    )
    small_tokenizer.save(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["chat_template"] = template
    config["bos_token"] = "<|im_start|>"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    tok = BPETokenizer.load(tmp_path)
    # trim_blocks drops the newline after a block tag (not after {{ }}), lstrip_blocks the indentation before one
    assert (
        tok.apply_chat_template([{"role": "user", "content": "hi"}]) == "<|im_start|>\n[U]hi<|endoftext|>\n"
    )
    with pytest.raises(ValueError, match="no tools here"):
        tok.apply_chat_template([{"role": "tool", "content": "x"}])
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert hf.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == (
        tok.apply_chat_template([{"role": "user", "content": "hi"}])
    )


def test_chat_template_jinja_file_wins_and_save_moves_it_into_config(small_tokenizer, tmp_path):
    small_tokenizer.save(tmp_path)
    (tmp_path / "chat_template.jinja").write_text("{{ messages[0]['content'] | upper }}", encoding="utf-8")
    tok = BPETokenizer.load(tmp_path)
    assert tok.apply_chat_template([{"role": "user", "content": "abc"}]) == "ABC"
    out = tmp_path / "resaved"
    (out).mkdir()
    (out / "chat_template.jinja").write_text("stale", encoding="utf-8")
    tok.save(out)
    assert not (out / "chat_template.jinja").exists()
    assert BPETokenizer.load(out).apply_chat_template([{"role": "user", "content": "x"}]) == "X"


def test_bad_messages_and_bad_templates_raise_value_error(small_tokenizer):
    with pytest.raises(ValueError, match="role"):
        small_tokenizer.apply_chat_template([{"content": "no role"}])
    tok = BPETokenizer(vocab_size=300, chat_template="{% for x in %}", show_progress=False).train(["ab ab"])
    with pytest.raises(ValueError, match="not valid Jinja"):
        tok.apply_chat_template(MESSAGES)
