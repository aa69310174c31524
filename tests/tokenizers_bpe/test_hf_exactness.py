"""Our ids equal HF tokenizers' ids, on SmolLM2's tokenizer and on what we save ourselves."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenizers_bpe import BPETokenizer

tokenizers = pytest.importorskip("tokenizers")

# Any Unicode except lone surrogates (Python str allows them, UTF-8 does not: both libraries refuse them).
UNICODE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
MIXED = st.lists(
    st.one_of(
        UNICODE, st.sampled_from(["<|endoftext|>", "<|im_start|>", "<|im_end|>", " ", "\n", "'s", "123"])
    ),
    max_size=6,
).map("".join)
FAST = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.shared_data
@pytest.mark.slow
def test_smollm2_tiny_shakespeare_every_line_and_whole_file(our_smollm2, hf_smollm2, shakespeare_text):
    lines = shakespeare_text.splitlines(keepends=True)
    mismatches = [line for line in lines if our_smollm2.encode(line) != hf_smollm2.encode(line).ids]
    assert mismatches == []
    assert our_smollm2.encode(shakespeare_text) == hf_smollm2.encode(shakespeare_text).ids


@pytest.mark.shared_data
def test_smollm2_every_pubmedqa_context(our_smollm2, hf_smollm2, pubmed_contexts):
    assert len(pubmed_contexts) > 500
    ours = [our_smollm2.encode(text) for text in pubmed_contexts]
    theirs = [encoding.ids for encoding in hf_smollm2.encode_batch(pubmed_contexts)]
    assert ours == theirs


@given(text=MIXED)
@FAST
def test_smollm2_unicode_strings(our_smollm2, hf_smollm2, text):
    assert our_smollm2.encode(text) == hf_smollm2.encode(text).ids


@given(ids=st.lists(st.integers(0, 49151), max_size=20))
@FAST
def test_smollm2_decode_of_any_ids_matches_hf(our_smollm2, hf_smollm2, ids):
    # Includes ids whose bytes are not valid UTF-8: both sides replace them with U+FFFD the same way.
    assert our_smollm2.decode(ids) == hf_smollm2.decode(ids, skip_special_tokens=False)
    assert our_smollm2.decode(ids, skip_special_tokens=True) == hf_smollm2.decode(
        ids, skip_special_tokens=True
    )


def test_smollm2_bytes_missing_from_its_vocab_are_dropped_as_hf_does(our_smollm2, hf_smollm2):
    # U+40000 needs byte 0xF1, which SmolLM2's vocabulary lacks: HF drops it (no unk token), and so do we.
    text = "a\U00040000b"
    assert our_smollm2.encode(text) == hf_smollm2.encode(text).ids
    assert our_smollm2.decode(our_smollm2.encode(text)) != text


def test_smollm2_counts_and_special_ids(our_smollm2, hf_smollm2):
    assert our_smollm2.vocab_size == hf_smollm2.get_vocab_size() == 49152
    assert (our_smollm2.bos_token, our_smollm2.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert our_smollm2.eos_token_id == hf_smollm2.token_to_id("<|im_end|>") == 2
    assert our_smollm2.token_to_id("Ġthe") == hf_smollm2.token_to_id("Ġthe")


@pytest.fixture(scope="module")
def saved_small(small_tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved-small")
    small_tokenizer.save(folder)
    return folder


@given(text=MIXED)
@FAST
def test_hf_opens_what_we_save_and_encodes_alike(small_tokenizer, saved_small, text):
    hf = _hf_from(saved_small)
    assert small_tokenizer.encode(text) == hf.encode(text).ids
    assert (
        small_tokenizer.decode(small_tokenizer.encode(text))
        == text
        == hf.decode(hf.encode(text).ids, skip_special_tokens=False)
    )


def _hf_from(folder, _cache={}):  # noqa: B006 (a deliberate per-process cache)
    if folder not in _cache:
        _cache[folder] = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    return _cache[folder]


@pytest.mark.shared_data
@pytest.mark.slow
def test_hf_agrees_on_shakespeare_with_our_trained_tokenizer(tmp_path, shakespeare_text):
    lines = shakespeare_text.splitlines(keepends=True)
    ours = BPETokenizer(vocab_size=1000, pattern="gpt2", show_progress=False).train(lines[:8000])
    ours.save(tmp_path / "tokenizer.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert [ours.encode(line) for line in lines] == [e.ids for e in hf.encode_batch(lines)]
    assert ours.decode(ours.encode(shakespeare_text)) == shakespeare_text


def test_transformers_loads_our_folder(small_tokenizer, saved_small):
    transformers = pytest.importorskip("transformers")
    text = "Hello <|im_start|>user\nnaïve café 😀 2024<|im_end|>"
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    for hf in (
        transformers.AutoTokenizer.from_pretrained(str(saved_small)),
        transformers.PreTrainedTokenizerFast(tokenizer_file=str(saved_small / "tokenizer.json")),
    ):
        assert hf.encode(text) == small_tokenizer.encode(text)
        assert hf.decode(small_tokenizer.encode(text)) == text
    auto = transformers.AutoTokenizer.from_pretrained(str(saved_small))
    assert auto.eos_token_id == small_tokenizer.eos_token_id == 0
    assert auto.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        small_tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    )


@pytest.mark.parametrize("digits", [True, False])
def test_sequence_with_digits_pre_tokenizer_matches_hf(tmp_path, small_tokenizer, digits):
    """SmolLM2's original layout: Sequence[Digits(individual_digits), ByteLevel(use_regex)]."""
    from tokenizers import pre_tokenizers

    small_tokenizer.save(tmp_path / "tokenizer.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=digits), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    hf.save(str(tmp_path / "digits.json"))
    ours = BPETokenizer.load(tmp_path / "digits.json")
    for text in ["In 2024, 1,234 people paid $56.78", " x1y22z333 ", "٣٤ and ²³ and 12345678"]:
        assert ours.encode(text) == hf.encode(text).ids


def test_ignore_merges_llama3_style_matches_hf(small_tokenizer, tmp_path):
    """Llama-3 sets ``ignore_merges``: a word that is itself a token is taken whole, before any merge."""
    path = small_tokenizer.save(tmp_path / "tokenizer.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["model"]["ignore_merges"] = True
    data["model"]["vocab"]["Ġshel"] = max(data["model"]["vocab"].values()) + 1  # reachable only whole
    path.write_text(json.dumps(data), encoding="utf-8")
    ours, hf = BPETokenizer.load(path), tokenizers.Tokenizer.from_file(str(path))
    texts = [" shel", " shells", "she sells sea shells", " shel shel", "Ünïcödé wörds"]
    assert [ours.encode(t) for t in texts] == [hf.encode(t).ids for t in texts]
    assert ours.encode(" shel") == [data["model"]["vocab"]["Ġshel"]]


def test_resaving_smollm2_keeps_hf_encoding(our_smollm2, hf_smollm2, tmp_path):
    path = our_smollm2.save(tmp_path / "smol")
    reopened = tokenizers.Tokenizer.from_file(str(path))
    texts = ["Hello world!", "<|im_start|>user\n 12345 naïve 😀<|im_end|>", "  spaces\t\ttabs\n\n"]
    assert [reopened.encode(t).ids for t in texts] == [hf_smollm2.encode(t).ids for t in texts]
    again = BPETokenizer.load(tmp_path / "smol")
    assert (again.eos_token, again.pad_token, again.vocab_size) == ("<|im_end|>", "<|im_end|>", 49152)
    assert again.apply_chat_template([{"role": "user", "content": "x"}]) == our_smollm2.apply_chat_template(
        [{"role": "user", "content": "x"}]
    )
