"""Training agreement with HF's BpeTrainer: same corpus, vocab size, pre-split and special tokens -> same merges."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenizers_bpe import BPETokenizer, pretokenize

tokenizers = pytest.importorskip("tokenizers")


def hf_train(texts: list[str], vocab_size: int, pattern: str, specials: list[str], min_frequency: int = 0):
    from tokenizers import Regex, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pretokenize.resolve_pattern(pattern)), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [tuple(merge) for merge in model["merges"]]


def ours_train(texts, vocab_size, pattern, specials, min_frequency=0):
    tok = BPETokenizer(
        vocab_size=vocab_size,
        special_tokens=specials,
        pattern=pattern,
        min_frequency=min_frequency,
        show_progress=False,
        bos_token=None,
        eos_token=None,
        pad_token=None,
        unk_token=None,
    )
    tok.train(texts)
    return tok._spec.vocab, tok._spec.merges


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", "llama3"])
def test_identical_merges_and_ids_on_small_corpus(small_corpus, pattern):
    specials = ["<|endoftext|>", "<pad>"]
    hf_vocab, hf_merges = hf_train(small_corpus, 600, pattern, specials)
    vocab, merges = ours_train(small_corpus, 600, pattern, specials)
    assert len(merges) > 200
    assert merges == hf_merges
    assert vocab == hf_vocab


def test_min_frequency_stops_where_hf_stops(small_corpus):
    hf_vocab, hf_merges = hf_train(small_corpus, 5000, "gpt4", ["<|endoftext|>"], min_frequency=30)
    vocab, merges = ours_train(small_corpus, 5000, "gpt4", ["<|endoftext|>"], min_frequency=30)
    assert 0 < len(merges) < 5000 - 257
    assert merges == hf_merges and vocab == hf_vocab


WORDS = st.lists(st.text("abcab ", min_size=1, max_size=8), min_size=1, max_size=30)


@given(texts=WORDS, extra=st.integers(1, 40))
@settings(max_examples=150, deadline=None, derandomize=True, database=None)
def test_identical_merges_on_generated_corpora(texts, extra):
    """Tiny alphabets force many ties and tokens reachable by two merge paths ('ab'+'c' and 'a'+'bc')."""
    hf_vocab, hf_merges = hf_train(texts, 257 + extra, "gpt2", ["<s>"])
    vocab, merges = ours_train(texts, 257 + extra, "gpt2", ["<s>"])
    assert merges == hf_merges
    assert vocab == hf_vocab


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["gpt2", "gpt4"])
def test_identical_merges_on_tiny_shakespeare(shakespeare_text, pattern):
    lines = shakespeare_text.splitlines(keepends=True)
    hf_vocab, hf_merges = hf_train(lines, 4096, pattern, ["<|endoftext|>"])
    vocab, merges = ours_train(lines, 4096, pattern, ["<|endoftext|>"])
    assert len(merges) == 4096 - 257
    assert merges == hf_merges
    assert vocab == hf_vocab


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4"])
def test_default_tokenizer_trains_hf_merges_with_the_default_special_tokens(small_corpus, pattern):
    """BPETokenizer's defaults (five special tokens, <pad> and <mask> included) against BpeTrainer given them."""
    from tokenizers_bpe import DEFAULT_SPECIAL_TOKENS

    hf_vocab, hf_merges = hf_train(small_corpus, 600, pattern, list(DEFAULT_SPECIAL_TOKENS))
    tok = BPETokenizer(vocab_size=600, pattern=pattern, show_progress=False).train(small_corpus)
    assert tok._spec.merges == hf_merges and tok._spec.vocab == hf_vocab
    assert [hf_vocab[t] for t in DEFAULT_SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (tok.pad_token_id, tok.mask_token_id) == (3, 4)
