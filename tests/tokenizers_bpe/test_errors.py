"""Bad input gets a ValueError that names the value seen and what would be valid."""

from __future__ import annotations

import json

import pytest

from tokenizers_bpe import BPETokenizer


@pytest.mark.parametrize("size", [0, 100, 260, "8192", 2.5])
def test_vocab_size_below_bytes_plus_specials(size):
    with pytest.raises(ValueError, match=rf"vocab_size={size!r}.*>= 261"):
        BPETokenizer(vocab_size=size)


def test_vocab_size_exactly_bytes_plus_specials_trains_no_merge():
    tok = BPETokenizer(vocab_size=261, show_progress=False).train(["aaaa bbbb"])
    assert tok.vocab_size == 261 and tok.encode("aa") == [tok.token_to_id("a")] * 2


def test_other_bad_constructor_arguments():
    with pytest.raises(ValueError, match="min_frequency=-1"):
        BPETokenizer(min_frequency=-1)
    with pytest.raises(ValueError, match=r"eos_token='</s>'"):
        BPETokenizer(eos_token="</s>")
    with pytest.raises(
        ValueError, match=r"pad_token='<\|endoftext\|>'"
    ):  # named explicitly, yet not a special
        BPETokenizer(special_tokens=["<pad>"], pad_token="<|endoftext|>")


def test_roles_default_to_endoftext_only_when_it_is_special():
    tok = BPETokenizer(
        vocab_size=300, special_tokens=["<pad>", "<mask>"], pad_token="<pad>", show_progress=False
    )
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (None, None, "<pad>", None)
    tok.train(["some text to learn from"])
    assert tok.pad_token_id == 0 and tok.eos_token_id is None and type(BPETokenizer().eos_token) is str
    with pytest.raises(ValueError, match=r"pattern '\(unclosed'"):
        BPETokenizer(pattern="(unclosed")


@pytest.mark.parametrize("corpus", [[], [""], iter([]), ["", ""]])
def test_training_on_nothing(corpus):
    with pytest.raises(ValueError, match="no text"):
        BPETokenizer(vocab_size=300, show_progress=False).train(corpus)


def test_training_on_non_strings():
    with pytest.raises(ValueError, match="#1 is a bytes"):
        BPETokenizer(vocab_size=300, show_progress=False).train(["ok", b"bytes"])


@pytest.mark.parametrize("bad", [400, -1, 10**9, "7", None])
def test_decode_unknown_id(small_tokenizer, bad):
    with pytest.raises(ValueError, match=rf"cannot decode id {bad!r}.*0\.\.399"):
        small_tokenizer.decode([5, bad])


def test_encode_non_string(small_tokenizer):
    with pytest.raises(ValueError, match="expects a str; got list"):
        small_tokenizer.encode(["a"])


def _write(tmp_path, data, name="tokenizer.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_corrupt_json(tmp_path):
    with pytest.raises(ValueError, match="not valid JSON"):
        BPETokenizer.load(_write(tmp_path, '{"model": {"type": "BPE", "vocab'))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        BPETokenizer.load(tmp_path / "absent")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["model"].update(type="WordPiece"), "model type is 'WordPiece'"),
        (lambda d: d["model"].update(byte_fallback=True), "byte_fallback"),
        (lambda d: d.update(pre_tokenizer={"type": "Metaspace"}, decoder={"type": "Metaspace"}), "Metaspace"),
        (lambda d: d["model"]["merges"].append(["zz", "qq"]), "'zz' \\+ 'qq'"),
        (lambda d: d["model"]["merges"].append("a b c"), "'a b c'"),
        (lambda d: d.pop("model"), "'model' entry"),
        (lambda d: d["model"].update(vocab=["a"]), "model vocab"),
    ],
)
def test_non_bpe_or_broken_tokenizer_json(small_tokenizer, tmp_path, change, message):
    data = json.loads(small_tokenizer.save(tmp_path / "ok.json").read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(ValueError, match=message):
        BPETokenizer.load(_write(tmp_path, data))


def test_json_that_is_not_an_object(tmp_path):
    with pytest.raises(ValueError, match="top level is 'list'"):
        BPETokenizer.load(_write(tmp_path, [1, 2]))
