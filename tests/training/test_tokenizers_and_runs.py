"""Tokenizers behind the training surface (HF WordPiece via the wrapper), chat rendering errors, run helpers."""

from __future__ import annotations

import pytest

from training.data.collate import collator_for
from training.tokenizer_loading import HFTokenizer, load_tokenizer

WORDS = ["the", "king", "queen", "spoke", "to", "people", "##s", "and"]


@pytest.fixture
def wordpiece_dir(tmp_path):
    """A BERT-style WordPiece tokenizer (not a byte-level BPE, so it goes through the HF wrapper)."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    core = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    wrapped = transformers.PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]",
                                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    directory = tmp_path / "wordpiece"
    wrapped.save_pretrained(str(directory))
    return directory


def test_hf_wordpiece_tokenizer_has_the_training_surface(wordpiece_dir):
    tok = load_tokenizer(wordpiece_dir)
    assert isinstance(tok, HFTokenizer)
    assert tok.mask_token_id == 4 and tok.pad_token_id == 0 and tok.bos_token_id in (None, 2)  # none, or [CLS]
    assert tok.cls_token_id == 2 and tok.sep_token_id == 3 and tok.unk_token_id == 1
    assert tok.token_to_id("[MASK]") == 4 and tok.token_to_id("king") == 6 and tok.token_to_id("nope") is None
    assert set(tok.all_special_ids) == {0, 1, 2, 3, 4}
    collate = collator_for("mlm", tok, tok.pad_token_id, seed=0, vocab_size=tok.vocab_size)
    batch = collate([{"input_ids": tok.encode("the king spoke to the people")}])
    assert batch["input_ids"].shape == batch["labels"].shape


def test_resume_reads_an_hf_tokenizer_back(wordpiece_dir, tmp_path):
    from training.run_tokenizer import TOKENIZER_DIR, run_tokenizer

    root = tmp_path / "run"
    settings = {"tokenizer_path": str(wordpiece_dir), "model_type": "encoder_only"}
    first = run_tokenizer(settings, root, ["the king"], fresh=True)
    again = run_tokenizer(settings, root, ["the king"], fresh=False)  # what --resume does
    assert (root / TOKENIZER_DIR).is_dir() and isinstance(again, HFTokenizer)
    assert again.encode("the queen spoke") == first.encode("the queen spoke")


def test_chat_template_returning_ids_is_a_value_error():
    from training.data.examples import chat_example

    class Tok:
        def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=False):
            return [1, 2, 3]

    with pytest.raises(ValueError, match="returned list, expected str"):
        chat_example(Tok(), [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])


def test_tokenizer_sample_budget_counts_utf8_bytes():
    from training.run_tokenizer import training_sample

    assert list(training_sample(["ééé", "b"], 4)) == ["ééé"]  # 6 bytes, 3 characters: the budget is spent
    assert list(training_sample(["abc", "d", "e"], 4)) == ["abc", "d"]


def test_newest_run_with_model_skips_failed_starts(tmp_path):
    import os

    from training.run import RUN_CONFIG, newest_run

    done, failed = tmp_path / "done", tmp_path / "failed"
    for run in (done, failed):
        run.mkdir()
        (run / RUN_CONFIG).write_text("{}")
    (done / "final").mkdir()
    os.utime(failed / RUN_CONFIG, (2e9, 2e9))  # the failed start is the newest
    assert newest_run(tmp_path) == failed  # what --resume looks at (it then says there is no checkpoint yet)
    assert newest_run(tmp_path, with_model=True) == done  # what generate picks
