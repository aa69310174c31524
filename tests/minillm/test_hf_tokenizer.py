"""HFTokenizer: the one wrapper of HF tokenizers (WordPiece, BPE, anything transformers opens)."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")


def _tiny_fast_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, "hello": 4, "world": 5, "user": 6, "assistant": 7, ":": 8}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        chat_template="{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}",
    )


def test_training_loader_uses_the_bridge_wrapper(minilm_path):
    from minillm.hf.tokenizer import HFTokenizer
    from minillm.hf.wordpiece import WordPieceTokenizer
    from training.tokenizer_loading import HFTokenizer as Reexported
    from training.tokenizer_loading import load_tokenizer

    assert Reexported is HFTokenizer and WordPieceTokenizer is HFTokenizer
    tokenizer = load_tokenizer(minilm_path)  # WordPiece: our BPE declines, the HF wrapper opens it
    assert isinstance(tokenizer, HFTokenizer)
    ids = tokenizer.encode("Hello world")
    assert ids[0] == tokenizer.cls_token_id == tokenizer.bos_token_id
    assert ids[-1] == tokenizer.sep_token_id == tokenizer.eos_token_id
    assert tokenizer.encode_batch(["Hello world"]) == [ids]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "hello world"
    assert tokenizer.token_to_id("no-such-token-here") is None
    assert tokenizer.id_to_token(tokenizer.mask_token_id) == "[MASK]"
    assert tokenizer.id_to_token(10**9) is None
    assert set(tokenizer.all_special_ids) >= {tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id}


def test_surface_chat_template_and_atomic_save(tmp_path):
    from minillm.hf.tokenizer import HFTokenizer

    tokenizer = HFTokenizer(_tiny_fast_tokenizer())
    assert tokenizer.vocab_size == len(tokenizer) == 9
    assert tokenizer.encode("hello world", add_special_tokens=False) == [4, 5]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 3)
    assert tokenizer.cls_token_id is None and tokenizer.mask_token_id is None
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False)
    assert text.strip() == "user : hello"
    with pytest.raises(ValueError, match="expects a str"):
        tokenizer.encode(b"hello")
    folder = tokenizer.save(tmp_path / "tok")
    (folder / "keep.txt").write_text("other files in the folder stay")
    again = HFTokenizer.load(folder)
    assert again.encode("hello world user") == tokenizer.encode("hello world user")
    assert again.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False) == text
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temp folders left
    assert (folder / "keep.txt").is_file()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HFTokenizer.load(tmp_path / "missing")


def test_a_named_json_file_opens_alone_with_its_own_config(tmp_path):
    """``data/other.json`` + ``data/other_config.json`` (the layout tokenizers_bpe saves): that file, those roles."""
    from minillm.errors import InputError
    from minillm.hf.tokenizer import HFTokenizer
    from tokenizers_bpe import BPETokenizer

    ours = BPETokenizer(vocab_size=300, eos_token="<|im_end|>", show_progress=False).train(["hello world"] * 10)
    ours.save(tmp_path / "other.json")
    _tiny_fast_tokenizer().save_pretrained(str(tmp_path))  # a different tokenizer.json in the same folder
    tokenizer = HFTokenizer.load(tmp_path / "other.json")
    assert tokenizer.vocab_size == ours.vocab_size and tokenizer.encode("hello world") == ours.encode("hello world")
    assert (tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id) == (2, 3, 4)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text == ours.apply_chat_template([{"role": "user", "content": "hi"}])
    assert HFTokenizer.load(tmp_path / "tokenizer.json").vocab_size == 9  # the standard name: the folder's own
    (tmp_path / "broken.json").write_text('{"model": ', encoding="utf-8")
    with pytest.raises(InputError, match="broken.json"):
        HFTokenizer.load(tmp_path / "broken.json")
