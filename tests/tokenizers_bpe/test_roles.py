"""Special-token roles: masked-LM defaults, and every role surviving save/load through a folder or a file path."""

from __future__ import annotations

import json

import pytest

from tokenizers_bpe import DEFAULT_SPECIAL_TOKENS, ROLES, BPETokenizer
from tokenizers_bpe.errors import TokenizerInputError

CUSTOM_TEMPLATE = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{{ eos_token }}{% endfor %}"


def _roles(tok) -> dict:
    return {role: getattr(tok, role) for role in ROLES}


def _ids(tok) -> tuple:
    return (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id, tok.mask_token_id)


@pytest.fixture(scope="module")
def custom(small_corpus):
    """Every role set to something other than its default, and a template of its own."""
    return BPETokenizer(
        vocab_size=320,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        mask_token="<mask>",
        chat_template=CUSTOM_TEMPLATE,
        show_progress=False,
    ).train(small_corpus)


def test_default_tokenizer_is_ready_for_masked_lm():
    tok = BPETokenizer(vocab_size=10000)
    assert tuple(tok.special_tokens) == DEFAULT_SPECIAL_TOKENS
    assert DEFAULT_SPECIAL_TOKENS[:3] == ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # ids 0-2 unchanged
    assert (tok.pad_token, tok.mask_token, tok.eos_token) == ("<pad>", "<mask>", "<|endoftext|>")
    tok.train(["a few words to learn from, a few words"], show_progress=False)
    assert (tok.pad_token_id, tok.mask_token_id, tok.eos_token_id, tok.bos_token_id) == (3, 4, 0, 0)
    assert {3, 4} <= set(tok.all_special_ids)


def test_role_defaults_follow_the_special_tokens():
    tok = BPETokenizer(vocab_size=300, special_tokens=["<|endoftext|>"])
    assert (tok.pad_token, tok.mask_token) == ("<|endoftext|>", None)  # GPT-2 style: pad = eos, no mask
    tok = BPETokenizer(vocab_size=300, special_tokens=["<mask>"])
    assert _roles(tok) == {**dict.fromkeys(ROLES), "mask_token": "<mask>"}
    with pytest.raises(TokenizerInputError, match=r"mask_token='\[MASK\]'"):
        BPETokenizer(mask_token="[MASK]")
    assert BPETokenizer(mask_token=None).mask_token is None


@pytest.mark.parametrize("target", ["folder", "tokenizer.json", "other.json"])
def test_every_role_and_the_template_survive_save_and_load(custom, tmp_path, target):
    path = tmp_path / "data" / target if target != "folder" else tmp_path / "out"
    written = custom.save(path)
    loaded = BPETokenizer.load(path)
    assert _roles(loaded) == _roles(custom) and _ids(loaded) == _ids(custom)
    assert loaded.chat_template == CUSTOM_TEMPLATE
    messages = [{"role": "user", "content": "hi"}]
    assert loaded.apply_chat_template(messages) == custom.apply_chat_template(messages) == "[user]hi<|im_end|>"
    config = written.with_name(written.stem + "_config.json")
    assert json.loads(config.read_text(encoding="utf-8"))["mask_token"] == "<mask>"


def test_file_tokenizers_in_one_folder_keep_their_own_config(custom, small_tokenizer, tmp_path):
    folder = tmp_path / "data"
    small_tokenizer.save(folder / "tokenizer.json")
    custom.save(folder / "other.json")
    assert sorted(p.name for p in folder.iterdir()) == [
        "other.json", "other_config.json", "tokenizer.json", "tokenizer_config.json"
    ]
    assert _roles(BPETokenizer.load(folder / "other.json")) == _roles(custom)
    assert _roles(BPETokenizer.load(folder / "tokenizer.json")) == _roles(small_tokenizer)
    assert _roles(BPETokenizer.load(folder)) == _roles(small_tokenizer)
    with pytest.raises(TokenizerInputError, match="_config.json"):
        custom.save(folder / "tokenizer_config.json")  # would overwrite tokenizer.json's roles
    assert _roles(BPETokenizer.load(folder)) == _roles(small_tokenizer)


def test_bare_tokenizer_json_gets_the_default_roles(custom, tmp_path):
    path = custom.save(tmp_path / "tok.json")
    path.with_name("tok_config.json").unlink()  # as HF tokenizers' Tokenizer.save writes it
    loaded = BPETokenizer.load(path)
    assert (loaded.pad_token, loaded.mask_token, loaded.eos_token) == ("<pad>", "<mask>", "<|endoftext|>")


def test_config_written_before_mask_token_existed_gets_the_mask_default(small_tokenizer, tmp_path):
    small_tokenizer.save(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    del config["mask_token"]
    config["pad_token"] = None
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    loaded = BPETokenizer.load(tmp_path)
    assert (loaded.mask_token_id, loaded.pad_token_id) == (4, None)  # a key present as null stays unset


@pytest.mark.parametrize("target", ["folder", "tokenizer.json"])
def test_transformers_sees_the_same_roles(custom, small_tokenizer, tmp_path, target):
    transformers = pytest.importorskip("transformers")
    for tok in (custom, small_tokenizer):
        folder = tmp_path / str(id(tok))
        tok.save(folder if target == "folder" else folder / "tokenizer.json")
        for hf in (
            transformers.AutoTokenizer.from_pretrained(str(folder)),
            transformers.PreTrainedTokenizerFast.from_pretrained(str(folder)),
        ):
            assert (hf.pad_token, hf.mask_token, hf.eos_token) == (tok.pad_token, tok.mask_token, tok.eos_token)
            assert (hf.pad_token_id, hf.mask_token_id, hf.eos_token_id) == (
                tok.pad_token_id, tok.mask_token_id, tok.eos_token_id
            )
