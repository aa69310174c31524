"""BPETokenizer's surface: training, round trips, special tokens, vocabulary, save/load."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenizers_bpe import BPETokenizer

ROUND_TRIP = [
    "",
    "a",
    " ",
    "\n",
    "\t\r\n",
    "😀",
    "👩‍👩‍👧‍👦",
    "한국어",
    "日本語",
    "naïve café",
    "Größe",
    "\x00\x01\x7f",
    "<|endoftext|>",
    "a<|im_start|>b<|im_end|>",
    "<|endoftext",
    "   leading and trailing   ",
    "x" * 5000,
    "The quick brown fox. " * 200,
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_decode_inverts_encode_on_a_matrix_of_strings(small_tokenizer, text):
    assert small_tokenizer.decode(small_tokenizer.encode(text)) == text


@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_decode_inverts_encode_on_any_unicode(small_tokenizer, text):
    ids = small_tokenizer.encode(text)
    assert small_tokenizer.decode(ids) == text
    assert all(0 <= index < small_tokenizer.vocab_size for index in ids)


def test_lone_surrogates_are_refused_by_name(small_tokenizer):
    # No UTF-8 encoding exists for them; HF refuses such strings too (documented exception to the round trip).
    with pytest.raises(ValueError, match="surrogate"):
        small_tokenizer.encode("a\ud800b")


def test_trained_layout_counts_and_special_ids(small_tokenizer):
    tok = small_tokenizer
    assert tok.vocab_size == len(tok) == 400 == len(tok.get_vocab())
    specials = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "<mask>")
    assert [tok.token_to_id(t) for t in specials] == [0, 1, 2, 3, 4]
    assert tok.bos_token_id == tok.eos_token_id == tok.unk_token_id == 0
    assert (tok.pad_token, tok.pad_token_id, tok.mask_token, tok.mask_token_id) == ("<pad>", 3, "<mask>", 4)
    assert tok.id_to_token(5) == "!" and tok.token_to_id("!") == 5  # bytes follow, in code point order
    assert tok.id_to_token(10**6) is None and tok.token_to_id("no such token") is None
    assert tok.all_special_ids == [0, 1, 2, 3, 4]
    the = tok.token_to_id("Ġthe")  # a merged token, in byte-level form
    assert the is not None and the > 260 and tok.encode(" the") == [the] and tok.tokenize(" the") == ["Ġthe"]


def test_special_tokens_are_whole_and_policy_decides(small_tokenizer):
    tok = small_tokenizer
    text = "hi<|endoftext|>there<|im_end|>"
    ids = tok.encode(text)
    assert ids.count(0) == 1 and ids.count(2) == 1
    plain = tok.encode(text, allowed_special="none")
    assert 0 not in plain and 2 not in plain and tok.decode(plain) == text
    only_eos = tok.encode(text, allowed_special={"<|endoftext|>"})
    assert 0 in only_eos and 2 not in only_eos
    assert tok.decode(ids, skip_special_tokens=True) == "hithere"
    with pytest.raises(ValueError, match="<nope>"):
        tok.encode(text, allowed_special={"<nope>"})


def test_encode_batch_and_decode_batch_match_single_calls(small_tokenizer):
    texts = ["one", "two words", "<|im_start|>three"]
    batch = small_tokenizer.encode_batch(texts)
    assert batch == [small_tokenizer.encode(t) for t in texts]
    assert small_tokenizer.decode_batch(batch) == texts


def test_training_streams_a_generator_and_learns_frequent_words(small_corpus):
    tok = BPETokenizer(vocab_size=300, show_progress=False)
    tok.train(line for line in small_corpus)  # one pass over a generator: nothing held but the counts
    assert tok.vocab_size == 300
    assert len(tok.encode(" shells")) == 1  # frequent words become single tokens
    assert tok.decode(tok.encode(" shells")) == " shells"


def test_special_token_text_in_the_corpus_is_not_learnt():
    corpus = ["<|endoftext|>" * 50 + "ab"] * 10
    tok = BPETokenizer(vocab_size=270, show_progress=False).train(corpus)
    assert tok.token_to_id("<|") is None and tok.token_to_id("|>") is None
    assert tok.token_to_id("ab") is not None


def test_training_stops_when_no_pair_is_left():
    tok = BPETokenizer(vocab_size=1000, show_progress=False).train(["abab"])
    assert tok.vocab_size == 256 + 5 + 2  # 'ab', then 'abab'
    assert tok.encode("abab") == [tok.token_to_id("abab")]


def test_untrained_size_is_the_target_and_encode_refuses():
    tok = BPETokenizer(vocab_size=1000)
    assert tok.vocab_size == 1000
    with pytest.raises(ValueError, match="not trained"):
        tok.encode("x")


@pytest.mark.parametrize("name", ["tokenizer.json", "folder"])
def test_save_load_round_trip_keeps_everything(small_tokenizer, tmp_path, name):
    path = tmp_path / name
    written = small_tokenizer.save(path)
    assert written.name == "tokenizer.json" and written.is_file()
    loaded = BPETokenizer.load(path)
    text = "The fox <|im_start|>sells 2024 shells 😀"
    assert loaded.encode(text) == small_tokenizer.encode(text)
    assert loaded.get_vocab() == small_tokenizer.get_vocab()
    assert loaded.eos_token_id == small_tokenizer.eos_token_id == 0
    data = json.loads(written.read_text(encoding="utf-8"))
    assert data["model"]["type"] == "BPE" and len(data["model"]["merges"]) == 400 - 261
    assert data["pre_tokenizer"]["pretokenizers"][0]["type"] == "Split"
    assert data["decoder"]["type"] == "ByteLevel"
    if name == "folder":
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        assert config["eos_token"] == "<|endoftext|>" and "<|im_start|>" in config["chat_template"]


def test_loading_gpt2_style_post_processor_adds_bos(small_tokenizer, tmp_path):
    path = small_tokenizer.save(tmp_path / "tokenizer.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [],
        "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1], "tokens": ["<|im_start|>"]}},
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    tok = BPETokenizer.load(path)
    assert tok.encode("hi")[0] == 1 and tok.encode("hi", add_special_tokens=False)[0] != 1
