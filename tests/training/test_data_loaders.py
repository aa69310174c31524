"""create_dataloaders: every objective and item format, packing with segment ids, chat masking, cache reuse."""

from __future__ import annotations

import pytest
import torch

from training import create_dataloaders

from . import data_fixtures as F

byte_tok, bpe_tokenizer, cache = F.byte_tok, F.bpe_tokenizer, F.cache
EOS = 256
DOCS = [f"doc {i}: " + "abcdefghij"[: 1 + i % 10] * (1 + i % 4) for i in range(40)]


def all_rows(loader) -> list[dict]:
    rows = []
    for batch in loader:
        for i in range(batch["input_ids"].shape[0]):
            rows.append(
                {
                    k: v[i][batch["attention_mask"][i].bool()]
                    for k, v in batch.items()
                    if k != "decoder_input_ids"
                }
            )
    return rows


def check_no_cross_document_targets(row: dict, eos: int) -> None:
    """Every target is predicted from its own segment, except a separator eos (which ends the previous doc)."""
    ids, labels, seg = row["input_ids"], row["labels"], row["segment_ids"]
    for t in range(len(ids) - 1):
        if labels[t + 1] != -100 and seg[t] != seg[t + 1]:
            assert ids[t + 1] == eos and labels[t + 1] == eos


def test_packed_clm_rows_rebuild_the_stream_with_correct_segments(byte_tok, cache):
    train, val = create_dataloaders(DOCS, DOCS, byte_tok, batch_size=4, max_length=32, cache_dir=cache)
    rows = all_rows(val)  # the validation loader keeps the order
    stream = torch.cat([r["input_ids"] for r in rows]).tolist()
    expected = [i for doc in DOCS for i in [EOS] + list(doc.encode())] + [EOS]
    assert stream == expected
    assert all(len(r["input_ids"]) == 32 for r in rows[:-1])
    for row in rows:
        ids, seg = row["input_ids"], row["segment_ids"]
        assert seg[0] == 0 and torch.equal(row["labels"], ids)
        starts = (seg[1:] != seg[:-1]).nonzero().flatten() + 1
        assert torch.equal(starts, (ids[1:] == EOS).nonzero().flatten() + 1)  # a new segment at every eos
        assert ((seg[1:] - seg[:-1]) <= 1).all() and ((seg[1:] - seg[:-1]) >= 0).all()
        check_no_cross_document_targets(row, EOS)
        for s in starts.tolist():  # the first real token of a document is a target, seen from its own eos
            if s + 1 < len(ids):
                assert row["labels"][s + 1] == ids[s + 1] and seg[s + 1] == seg[s]
    batch = next(iter(train))
    assert set(batch) == {"input_ids", "attention_mask", "labels", "segment_ids"}


def test_long_documents_are_cut_into_windows_and_padding_is_masked(byte_tok, cache):
    long_doc = "x" * 100
    _, val = create_dataloaders(
        ["short"] * 12, [long_doc, "tail"], byte_tok, batch_size=4, max_length=16, cache_dir=cache
    )
    batch = next(iter(val))
    assert batch["input_ids"].shape == (4, 16)
    rows = all_rows(val)
    assert sum(len(r["input_ids"]) for r in rows) == 1 + 100 + 1 + 4 + 1
    assert byte_tok.decode(torch.cat([r["input_ids"] for r in rows]).tolist()) == (
        "<|endoftext|>" + long_doc + "<|endoftext|>tail<|endoftext|>"
    )
    padded = [b for b in val][-1]
    pads = padded["attention_mask"] == 0
    assert (padded["labels"][pads] == -100).all() and (
        padded["input_ids"][pads] == byte_tok.pad_token_id
    ).all()


def test_unpacked_clm_gives_one_row_per_document_window(byte_tok, cache):
    docs = ["alpha", "b" * 20, "gamma"]
    _, val = create_dataloaders(
        docs * 2, docs, byte_tok, batch_size=2, max_length=8, packing=False, cache_dir=cache
    )
    texts = [byte_tok.decode(r["input_ids"].tolist()) for r in all_rows(val)]
    assert texts == ["alpha<|endoftext|>", "bbbbbbbb", "bbbbbbbb", "bbbb<|endoftext|>", "gamma<|endoftext|>"]
    assert "segment_ids" not in next(iter(val))


def test_model_forward_on_a_packed_batch(byte_tok, cache):
    from minillm import DecoderOnlyModel

    train, _ = create_dataloaders(DOCS, [], byte_tok, batch_size=2, max_length=24, cache_dir=cache)
    model = DecoderOnlyModel(
        {
            "model_type": "decoder_only",
            "vocab_size": 260,
            "d_model": 32,
            "num_heads": 2,
            "num_layers": 1,
            "max_seq_len": 32,
        }
    )
    loss = model(**next(iter(train))).loss
    assert torch.isfinite(loss) and loss.item() > 0


def labelled_text(tok, row) -> str:
    keep = row["labels"] != -100
    return tok.decode(row["input_ids"][keep].tolist())


CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Spain?"},
        {"role": "assistant", "content": "Madrid."},
    ]
}


@pytest.mark.parametrize("packing", [True, False])
def test_chat_labels_cover_only_assistant_turns(byte_tok, cache, packing):
    _, val = create_dataloaders(
        [CHAT] * 2, [CHAT], byte_tok, batch_size=1, max_length=256, packing=packing, cache_dir=cache
    )
    (row,) = all_rows(val)
    labelled = labelled_text(byte_tok, row)
    assert labelled == "Paris.<|im_end|>\nMadrid.<|im_end|>\n<|endoftext|>"
    assert "Capital" in byte_tok.decode(row["input_ids"].tolist())
    if packing:
        check_no_cross_document_targets(row, EOS)


def test_chat_masking_with_the_project_bpe_tokenizer(bpe_tokenizer, cache):
    _, val = create_dataloaders(
        [CHAT] * 2, [CHAT], bpe_tokenizer, batch_size=1, max_length=256, cache_dir=cache
    )
    (row,) = all_rows(val)
    eos = bpe_tokenizer.eos_token_id
    keep = row["labels"] != -100
    text = bpe_tokenizer.decode(row["input_ids"][keep].tolist())
    assert text == "Paris.<|im_end|>\nMadrid.<|im_end|>\n" + bpe_tokenizer.decode([eos])
    full = bpe_tokenizer.decode(row["input_ids"].tolist())
    assert full == bpe_tokenizer.decode([eos]) + bpe_tokenizer.apply_chat_template(
        CHAT["messages"]
    ) + bpe_tokenizer.decode([eos])


def test_instruction_and_pair_items_learn_only_the_answer(byte_tok, cache):
    items = [
        {"instruction": "Add.", "input": "2 2", "output": "four"},
        {"input": "hi", "output": "hello"},
        {"source": "bonjour", "target": "good day"},
        "plain words",
    ]
    _, val = create_dataloaders(items, items, byte_tok, batch_size=1, max_length=512, cache_dir=cache)
    (row,) = all_rows(val)
    labelled = labelled_text(byte_tok, row)
    for answer in ("four", "hello", "good day", "plain words"):
        assert answer in labelled
    for prompt in ("Add.", "2 2", "bonjour", "user"):
        assert prompt not in labelled
    check_no_cross_document_targets(row, EOS)
    segments = row["segment_ids"][row["input_ids"] == EOS]
    assert segments.tolist() == list(range(5))  # four examples and the closing eos


def test_supervised_packing_never_splits_an_example(byte_tok, cache):
    items = [{"input": f"question {i}", "output": f"answer {i}"} for i in range(12)]
    _, val = create_dataloaders(items, items, byte_tok, batch_size=2, max_length=128, cache_dir=cache)
    rows = all_rows(val)
    assert len(rows) > 1
    for row in rows:
        text = byte_tok.decode(row["input_ids"].tolist())
        assert text.count("<|im_start|>user") == text.count("<|im_end|>\n<|im_start|>assistant") >= 1
        assert len(row["input_ids"]) <= 128


def test_mlm_masks_tokens_but_never_special_ones(byte_tok, cache):
    texts = ["the cat sat on the mat " * 4] * 16
    train, _ = create_dataloaders(
        texts, [], byte_tok, batch_size=8, max_length=64, model_type="encoder_only", cache_dir=cache
    )
    batch = next(iter(train))
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    chosen = batch["labels"] != -100
    assert 0.05 < chosen.float().mean() < 0.3
    assert (batch["input_ids"][chosen] == byte_tok.mask_token_id).float().mean() > 0.5
    assert not (batch["labels"] == EOS).any()  # no separators in MLM rows, and specials are never chosen
    assert (batch["input_ids"][~chosen] != byte_tok.mask_token_id).all()


def test_seq2seq_batches(byte_tok, cache):
    pairs = [{"source": "one two", "target": "un deux"}, {"input": "three", "output": "trois"}] * 2
    _, val = create_dataloaders(
        pairs, pairs[:2], byte_tok, batch_size=2, max_length=32, model_type="encoder_decoder", cache_dir=cache
    )
    batch = next(iter(val))
    assert set(batch) == {"input_ids", "attention_mask", "labels", "decoder_input_ids"}
    assert byte_tok.decode(batch["input_ids"][0].tolist()) == "one two<|endoftext|>"
    assert batch["labels"][1].tolist()[-3:] == [
        EOS,
        -100,
        -100,
    ]  # "trois"+eos is 2 shorter than "un deux"+eos
    assert batch["decoder_input_ids"][0, 0] == byte_tok.pad_token_id
    assert torch.equal(batch["decoder_input_ids"][0, 1:], batch["labels"][0, :-1])


def test_token_cache_is_reused_without_re_tokenizing(byte_tok, cache):
    create_dataloaders(DOCS, [], byte_tok, batch_size=2, max_length=32, cache_dir=cache)
    first = byte_tok.calls
    assert first >= len(DOCS)
    assert len(list(cache.iterdir())) == 1 and (next(cache.iterdir()) / "header.json").is_file()
    byte_tok.calls = 0
    train, _ = create_dataloaders(DOCS, [], byte_tok, batch_size=2, max_length=32, cache_dir=cache)
    assert byte_tok.calls == 1  # only the fingerprint probe
    assert len(next(iter(train))["input_ids"]) == 2
    byte_tok.calls = 0
    create_dataloaders(DOCS[:-1] + ["changed"], [], byte_tok, batch_size=2, max_length=32, cache_dir=cache)
    assert byte_tok.calls >= len(DOCS) and len(list(cache.iterdir())) == 2


def test_damaged_cache_is_rebuilt(byte_tok, cache):
    create_dataloaders(DOCS, [], byte_tok, batch_size=2, max_length=32, cache_dir=cache)
    store = next(cache.iterdir())
    with open(store / "tokens.bin", "r+b") as handle:
        handle.truncate(10)
    byte_tok.calls = 0
    train, _ = create_dataloaders(DOCS, [], byte_tok, batch_size=2, max_length=32, cache_dir=cache)
    assert byte_tok.calls > len(DOCS) / 2
    assert (store / "tokens.bin").stat().st_size > 10
    assert next(iter(train))["input_ids"].shape == (2, 32)


def test_default_cache_dir_follows_minillm_cache(byte_tok, tmp_path, monkeypatch):
    monkeypatch.setenv("MINILLM_CACHE", str(tmp_path / "mc"))
    create_dataloaders(DOCS, [], byte_tok, batch_size=2, max_length=32)
    assert len(list((tmp_path / "mc" / "tokens").iterdir())) == 1


def test_sampler_is_seeded_per_epoch(byte_tok, cache):
    def order(seed, epoch):
        train, _ = create_dataloaders(
            DOCS, [], byte_tok, batch_size=2, max_length=16, seed=seed, cache_dir=cache
        )
        train.sampler.set_epoch(epoch)
        return [b["input_ids"].tolist() for b in train]

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1) and order(1, 0) != order(2, 0)
    train, _ = create_dataloaders(DOCS, [], byte_tok, batch_size=2, max_length=16, seed=1, cache_dir=cache)
    assert [b["input_ids"].tolist() for b in train] == order(1, 0)  # a plain loop moves to the next epoch
    assert [b["input_ids"].tolist() for b in train] == order(1, 1)


def test_val_loader_is_none_without_val_texts(byte_tok, cache):
    _, val = create_dataloaders(DOCS, [], byte_tok, batch_size=2, max_length=16, cache_dir=cache)
    assert val is None


@pytest.mark.parametrize(
    "items, kwargs, message",
    [
        (["tiny"], {"batch_size": 4}, r"gives 1 rows .* fewer than batch_size=4"),
        ([], {}, "train_texts is empty"),
        (DOCS, {"objective": "gan"}, "objective='gan'"),
        (DOCS, {"model_type": "rnn"}, "model_type='rnn'"),
        (DOCS, {"batch_size": 0}, "batch_size=0"),
        ([CHAT] * 4, {"objective": "mlm"}, "mlm' trains on plain text; the train data has chat"),
        (DOCS, {"objective": "seq2seq"}, "needs sentinel tokens '<extra_id_0>'"),
        ([{"question": "?"}], {}, r"train item 0 has no known shape \(got \['question'\]\)"),
        (
            [{"messages": [{"role": "user", "content": "hi"}]}] * 4,
            {},
            "no train example has a token to learn",
        ),
    ],
)
def test_bad_data_and_arguments(byte_tok, cache, items, kwargs, message):
    options = {"batch_size": 2, "max_length": 16, "cache_dir": cache, **kwargs}
    with pytest.raises(ValueError, match=message):
        create_dataloaders(items, [], byte_tok, **options)


def test_both_loaders_carry_the_tokenizer_they_were_built_with(byte_tok, bpe_tokenizer, cache, tmp_path):
    from training.data.loaders import create_file_dataloaders

    train, val = create_dataloaders(DOCS, DOCS[:8], byte_tok, batch_size=2, max_length=32, cache_dir=cache)
    assert train.tokenizer is byte_tok and val.tokenizer is byte_tok
    train, val = create_dataloaders(DOCS, [], bpe_tokenizer, batch_size=2, max_length=32, cache_dir=cache)
    assert train.tokenizer is bpe_tokenizer and val is None
    file = tmp_path / "corpus.txt"
    file.write_text("\n\n".join(DOCS * 4), encoding="utf-8")
    train, val = create_file_dataloaders(file, byte_tok, batch_size=2, max_length=32, cache_dir=cache)
    assert train.tokenizer is byte_tok and val.tokenizer is byte_tok


def test_a_tokenizer_without_the_protocol_is_refused_by_name(cache):
    class Partial:
        eos_token_id = pad_token_id = 0
        vocab_size = 10

        def encode(self, text, add_special_tokens=True):
            return [1]

    with pytest.raises(ValueError, match=r"Partial lacks decode, apply_chat_template, token_to_id, save, "
                                         r"bos_token_id, mask_token_id, unk_token_id, all_special_ids"):
        create_dataloaders(DOCS, [], Partial(), batch_size=2, max_length=32, cache_dir=cache)


def test_default_bpe_tokenizer_trains_masked_lm(bpe_tokenizer, cache):
    """BPETokenizer's defaults hold <mask> (id 4) and <pad> (id 3): mlm needs nothing more."""
    texts = ["the quick brown fox jumps over the lazy dog " * 3] * 16
    train, _ = create_dataloaders(
        texts, [], bpe_tokenizer, batch_size=8, max_length=48, model_type="encoder_only", cache_dir=cache
    )
    batch = next(iter(train))
    chosen = batch["labels"] != -100
    assert bpe_tokenizer.mask_token_id == 4 and (batch["input_ids"][chosen] == 4).float().mean() > 0.5
    assert not chosen[batch["attention_mask"] == 0].any()
