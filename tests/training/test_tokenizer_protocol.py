"""minillm.tokenizer_protocol.Tokenizer: BPETokenizer and HFTokenizer implement every member, with its kind."""

from __future__ import annotations

import inspect

import pytest

from minillm.tokenizer_protocol import ATTRIBUTES, MEMBERS, METHODS, Tokenizer, missing_members
from tokenizers_bpe import BPETokenizer

ID_ATTRIBUTES = ("bos_token_id", "eos_token_id", "pad_token_id", "mask_token_id", "unk_token_id")


def check_surface(tok) -> None:
    """Every member exists on the class with the right kind (method or property) and gives the right type."""
    assert isinstance(tok, Tokenizer) and missing_members(tok) == []
    for name in METHODS:
        assert inspect.isfunction(inspect.getattr_static(type(tok), name)), name
    for name in ATTRIBUTES:
        assert isinstance(inspect.getattr_static(type(tok), name), property), name
    assert type(tok.vocab_size) is int and tok.vocab_size > 0
    for name in ID_ATTRIBUTES:
        value = getattr(tok, name)
        assert value is None or (type(value) is int and 0 <= value < tok.vocab_size), (name, value)
    assert isinstance(tok.all_special_ids, list) and all(type(i) is int for i in tok.all_special_ids)
    ids = tok.encode("the king", add_special_tokens=False)
    assert isinstance(ids, list) and all(type(i) is int for i in ids)
    assert isinstance(tok.decode(ids), str)
    assert tok.token_to_id("no-such-token-anywhere") is None


def test_the_protocol_declares_the_guide_surface():
    declared = {name for name in vars(Tokenizer) if not name.startswith("_")}
    assert declared == set(MEMBERS)
    assert set(ID_ATTRIBUTES) | {"vocab_size", "all_special_ids"} == set(ATTRIBUTES)


def test_bpe_tokenizer_implements_the_protocol(tmp_path):
    tok = BPETokenizer(vocab_size=300, show_progress=False).train(["the king and the queen"] * 10)
    check_surface(tok)
    assert (tok.pad_token_id, tok.mask_token_id) == (3, 4)
    assert tok.save(tmp_path / "tok.json").is_file()
    assert isinstance(BPETokenizer(), Tokenizer)  # untrained: every member is there already


@pytest.fixture
def wordpiece():
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer as Core
    from tokenizers import models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from minillm.hf.tokenizer import HFTokenizer

    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "king"])}
    core = Core(models.WordPiece(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return HFTokenizer(PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]",
                                               cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"))


def test_hf_tokenizer_implements_the_protocol(wordpiece, tmp_path):
    check_surface(wordpiece)
    assert (wordpiece.mask_token_id, wordpiece.pad_token_id, wordpiece.unk_token_id) == (4, 0, 1)
    assert wordpiece.eos_token_id == 3  # BERT has no eos: [SEP] stands in
    assert (wordpiece.save(tmp_path / "wp") / "tokenizer.json").is_file()


def test_data_code_finds_a_bert_mask_through_the_protocol(wordpiece):
    from training.data.collate import collator_for

    collate = collator_for("mlm", wordpiece, wordpiece.pad_token_id, seed=0, vocab_size=wordpiece.vocab_size)
    assert collate.collator.mask_token_id == 4
