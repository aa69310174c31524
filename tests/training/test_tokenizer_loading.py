"""load_tokenizer / load_model_and_tokenizer: the named file is the one loaded; broken files are one-line errors."""

from __future__ import annotations

import json

import pytest

from tokenizers_bpe import BPETokenizer, TokenizerInputError
from training.tokenizer_loading import HFTokenizer, load_tokenizer

CORPUS_A = ["the quick brown fox jumps over the lazy dog"] * 20
CORPUS_B = ["pack my box with five dozen liquor jugs, sphinx of black quartz"] * 20


@pytest.fixture
def two_in_one_folder(tmp_path):
    """``data/tokenizer.json`` and ``data/other.json``: different merges and different roles."""
    folder = tmp_path / "data"
    first = BPETokenizer(vocab_size=290, show_progress=False).train(CORPUS_A)
    other = BPETokenizer(vocab_size=300, eos_token="<|im_end|>", pad_token="<|endoftext|>", mask_token=None,
                         show_progress=False).train(CORPUS_B)
    first.save(folder / "tokenizer.json")
    other.save(folder / "other.json")
    return folder, first, other


def _same(loaded, expected) -> None:
    assert type(loaded) is BPETokenizer and loaded.get_vocab() == expected.get_vocab()
    assert loaded.encode("box of quartz") == expected.encode("box of quartz")
    assert (loaded.eos_token_id, loaded.pad_token_id, loaded.mask_token_id) == (
        expected.eos_token_id, expected.pad_token_id, expected.mask_token_id
    )


def test_load_model_and_tokenizer_loads_exactly_the_named_file(two_in_one_folder, tmp_path):
    from minillm import DecoderOnlyModel
    from training import load_model_and_tokenizer

    folder, first, other = two_in_one_folder
    model = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 300, "d_model": 16, "num_heads": 2,
                              "num_layers": 1, "max_seq_len": 16})
    model_dir = model.save_pretrained(tmp_path / "model")
    _, tokenizer = load_model_and_tokenizer(model_dir, tokenizer_path=folder / "other.json")
    _same(tokenizer, other)
    _, tokenizer = load_model_and_tokenizer(model_dir, tokenizer_path=folder / "tokenizer.json")
    _same(tokenizer, first)


def test_a_folder_and_its_config_mean_the_folders_tokenizer_json(two_in_one_folder):
    folder, first, _ = two_in_one_folder
    _same(load_tokenizer(folder), first)
    _same(load_tokenizer(folder / "tokenizer_config.json"), first)


def test_named_non_bpe_file_goes_to_transformers_not_to_its_sibling(two_in_one_folder):
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder, _, _ = two_in_one_folder
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "king"])}
    core = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.save(str(folder / "wordpiece.json"))
    tok = load_tokenizer(folder / "wordpiece.json")
    assert isinstance(tok, HFTokenizer) and tok.vocab_size == 7
    assert tok.encode("the king", add_special_tokens=False) == [5, 6]
    assert (tok.mask_token_id, tok.pad_token_id) == (4, 0)  # BERT's names: there is no wordpiece_config.json


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"model": {"type": "BPE", "vocab', "not valid JSON"),
        (json.dumps([1, 2]), "top level"),
        (json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}}), "merge"),
        (json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}}}), "'vocab' and 'merges'"),
    ],
)
@pytest.mark.parametrize("name", ["tokenizer.json", "named.json"])
def test_broken_tokenizer_json_is_one_error_naming_it_and_never_reaches_transformers(
    tmp_path, monkeypatch, content, message, name
):
    def no_fallback(*args, **kwargs):
        raise AssertionError("a broken tokenizer.json was handed to transformers")

    monkeypatch.setattr(HFTokenizer, "load", no_fallback)
    (tmp_path / name).write_text(content, encoding="utf-8")
    for path in (tmp_path / name, tmp_path) if name == "tokenizer.json" else (tmp_path / name,):
        with pytest.raises(TokenizerInputError, match=message) as caught:
            load_tokenizer(path)
        assert str(tmp_path / name) in str(caught.value) and "\n" not in str(caught.value)


def test_a_failure_inside_transformers_is_one_input_error_naming_the_file(tmp_path):
    pytest.importorskip("transformers")
    from minillm.errors import InputError

    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"type": "Unigram", "vocab": 3}}), encoding="utf-8")
    for target in (path, tmp_path):
        with pytest.raises(InputError, match="transformers cannot open") as caught:
            load_tokenizer(target)
        assert str(tmp_path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_paths_and_files_transformers_cannot_open_alone(tmp_path):
    from minillm.errors import InputError

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError, match="holds no tokenizer files"):
        load_tokenizer(tmp_path)
    (tmp_path / "notes.txt").write_text("not a tokenizer")
    pytest.importorskip("transformers")
    with pytest.raises(InputError, match="notes.txt"):
        load_tokenizer(tmp_path / "notes.txt")
