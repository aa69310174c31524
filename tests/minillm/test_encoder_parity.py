"""Our EncoderOnlyModel against transformers' BertForMaskedLM / BertModel (tiny random configs and MiniLM)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.testing import assert_close

from minillm import EncoderOnlyModel

pytest.importorskip("transformers")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A transformer encoder maps a sentence to one vector per token.",
    "Sentence embeddings are the mean of the token states.",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "How many legs does a spider have?",
    "Short.",
]


def tiny_bert(seed: int = 0, **overrides):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    kwargs = {"vocab_size": 120, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 96,
                  "max_position_embeddings": 64, "type_vocab_size": 2}
    kwargs.update(overrides)
    model = BertForMaskedLM(BertConfig(**kwargs)).eval()
    with torch.no_grad():  # a non-zero head bias and LayerNorm affine, so the test sees them
        model.cls.predictions.bias.normal_()
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.1)
    return model


def _padded_batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (3, 16), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 10:] = 0
    mask[1, 4:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    types = torch.zeros_like(ids)
    types[:, 8:] = 1
    return ids, mask, types


def test_hidden_mlm_logits_and_loss_match_transformers(tmp_path):
    hf = tiny_bert()
    hf.save_pretrained(tmp_path / "hf")
    ours = EncoderOnlyModel.from_pretrained(tmp_path / "hf")
    ids, mask, types = _padded_batch()
    dropped = torch.rand(ids.shape, generator=torch.Generator().manual_seed(2)) > 0.3
    labels = ids.masked_fill(dropped | (mask == 0), -100)  # never a label on padding
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels, output_hidden_states=True)
        hidden = ours(ids, mask, token_type_ids=types)
        out = ours(ids, mask, labels=labels, token_type_ids=types)
        mlm = ours.predict_mlm(ids, mask, token_type_ids=types)
    real = mask.bool()
    hidden_diff = (hidden - ref.hidden_states[-1])[real].abs().max().item()
    logit_diff = (out.logits - ref.logits)[real].abs().max().item()
    print(f"\nBERT parity: hidden max abs diff {hidden_diff:.2e}, MLM logits max abs diff {logit_diff:.2e}")
    assert_close(hidden[real], ref.hidden_states[-1][real], atol=1e-4, rtol=1e-4)
    assert_close(out.logits[real], ref.logits[real], atol=1e-4, rtol=1e-4)
    assert_close(mlm, out.logits)
    assert_close(out.loss, ref.loss, atol=1e-5, rtol=1e-5)
    assert isinstance(hidden, torch.Tensor) and hidden.shape == (3, 16, 64)
    assert not hidden[~real].any()  # padded positions are skipped and returned as zeros


def test_save_pretrained_opens_in_transformers(tmp_path):
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    ours = EncoderOnlyModel({"model_type": "encoder_only", "vocab_size": 120, "d_model": 64, "num_heads": 4, "num_layers": 2,
                                 "d_ff": 96, "max_seq_len": 64, "dropout": 0.1}).eval()
    ours.save_pretrained(tmp_path / "ours")
    hf = BertForMaskedLM.from_pretrained(tmp_path / "ours").eval()
    ids, mask, _ = _padded_batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        out = ours.predict_mlm(ids, mask)
    assert_close(out[mask.bool()], ref[mask.bool()], atol=1e-4, rtol=1e-4)
    again = EncoderOnlyModel.from_pretrained(tmp_path / "ours")
    with torch.no_grad():
        assert_close(again.predict_mlm(ids, mask), out)


def test_bert_model_without_head_loads_and_predict_mlm_raises(tmp_path):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    hf = BertModel(BertConfig(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=96, max_position_embeddings=64)).eval()
    hf.save_pretrained(tmp_path / "hf")
    assert any(k.startswith("pooler.") for k in load_file(tmp_path / "hf" / "model.safetensors"))
    ours = EncoderOnlyModel.from_pretrained(tmp_path / "hf")
    ids, mask, _ = _padded_batch()
    with torch.no_grad():
        assert_close(ours(ids, mask)[mask.bool()], hf(input_ids=ids, attention_mask=mask).last_hidden_state[
            mask.bool()], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="no masked-LM head"):
        ours.predict_mlm(ids, mask)
    with pytest.raises(ValueError, match="no masked-LM head"):
        ours(ids, mask, labels=ids)
    ours.save_pretrained(tmp_path / "ours")  # written as a BertModel
    reopened = BertModel.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        assert_close(reopened(input_ids=ids).last_hidden_state, ours(ids), atol=1e-5, rtol=1e-5)


def test_unknown_weight_raises(tmp_path):
    tiny_bert().save_pretrained(tmp_path / "hf")
    file = tmp_path / "hf" / "model.safetensors"
    state = load_file(file)
    state["bert.encoder.layer.0.attention.self.rotary.weight"] = torch.zeros(2)
    save_file(state, file)
    with pytest.raises(ValueError, match=r"unknown weights \[encoder.layer.0.attention.self.rotary.weight\]"):
        EncoderOnlyModel.from_pretrained(tmp_path / "hf")


def test_seed_calls_work_as_documented():
    config = {"model_type": "encoder_only", "vocab_size": 50, "d_model": 32, "num_heads": 4, "num_layers": 2, "d_ff": 64,
                  "max_seq_len": 32, "dropout": 0.1}
    model = EncoderOnlyModel(config).eval()
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones_like(ids)
    assert model(ids, mask).shape == (2, 7, 32)
    assert model.predict_mlm(ids, mask).shape == (2, 7, 50)
    out = model(input_ids=ids, attention_mask=mask, labels=ids)
    assert out.loss.ndim == 0 and out.logits.shape == (2, 7, 50)
    emb = model.embed(ids, mask, pooling="cls")
    assert_close(emb.norm(dim=-1), torch.ones(2))
    with pytest.raises(ValueError, match="pooling"):
        model.embed(ids, mask, pooling="max")


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from transformers import BertModel

    from minillm.hf.wordpiece import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.load(minilm_path)
    return tokenizer, EncoderOnlyModel.from_pretrained(minilm_path), BertModel.from_pretrained(minilm_path).eval()


def test_minilm_hidden_states_and_embeddings_match_transformers(minilm):
    from minillm.collators import pad_sequences

    tokenizer, ours, hf = minilm
    assert ours.mlm_head is None
    ids = pad_sequences(tokenizer.encode_batch(SENTENCES), tokenizer.pad_token_id)
    mask = (ids != tokenizer.pad_token_id).long()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden = ours(ids, mask)
        emb = ours.embed(ids, mask, pooling="mean", normalize=True)
    weights = mask[..., None].float()
    ref_emb = torch.nn.functional.normalize((ref * weights).sum(1) / weights.sum(1), dim=-1)
    real = mask.bool()
    diff = (hidden - ref)[real].abs().max().item()
    cosine = torch.nn.functional.cosine_similarity(emb, ref_emb).min().item()
    print(f"\nMiniLM parity: hidden max abs diff {diff:.2e}, min cosine {cosine:.8f}")
    assert diff < 1e-4
    assert cosine >= 0.9999
    # Similar sentences embed closer than unrelated ones.
    assert (emb[1] @ emb[2]) > (emb[1] @ emb[4])


def test_wordpiece_wrapper_round_trip(minilm, tmp_path):
    from tokenizers import Tokenizer

    from minillm.hf.wordpiece import WordPieceTokenizer

    tokenizer, _, _ = minilm
    ids = tokenizer.encode("Hello, World!")
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert len(ids) < 128  # the file's fixed padding is off
    assert tokenizer.encode("Hello", add_special_tokens=False) == [tokenizer.token_to_id("hello")]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "hello, world!"
    assert tokenizer.mask_token_id == tokenizer.token_to_id("[MASK]") and tokenizer.pad_token_id == 0
    assert tokenizer.vocab_size == 30522
    tokenizer.save(tmp_path / "tok")
    again = WordPieceTokenizer.load(tmp_path / "tok")
    assert again.encode_batch(SENTENCES) == tokenizer.encode_batch(SENTENCES)
    reference = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json"))
    assert reference.encode(SENTENCES[0]).ids == tokenizer.encode(SENTENCES[0])
