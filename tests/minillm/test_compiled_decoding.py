"""generate(..., compile=True): the compiled step over a static cache against the uncached forward and the eager
step, for every attention/rope/bias variant, the row-block operator, bfloat16, int8 weights, a second cache
length, and the models it refuses (adapter-wrapped projections, the encoder-decoder). Each compile takes seconds
on 2 cores: marked slow."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import main as cli
from minillm import DecoderOnlyModel, EncoderDecoderModel, compiled_decoding
from minillm.compiled_decoding import CompiledDecodeStep, static_cache_length
from minillm.generation import GenerationSettings
from minillm.int8_weights import quantize_int8
from minillm.one_row_products import row_block_product
from tokenizers_bpe import BPETokenizer

from .decoding_checks import padded_prompt, steps_match_forward
from .hf_reference import LLAMA_VARIANTS as CONFIGS
from .hf_reference import ours_from_hf, tiny_llama


@pytest.fixture(autouse=True)
def fresh_compiler():
    """Every test compiles from scratch (torch caches graphs per function, up to a recompile limit)."""
    torch.compiler.reset()
    yield
    torch.compiler.reset()


def _model(layers: int = 2) -> DecoderOnlyModel:
    torch.manual_seed(0)
    return DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 61, "d_model": 32, "num_heads": 4,
                             "num_kv_heads": 2, "num_layers": layers, "d_ff": 48, "max_seq_len": 512}).eval()


def _steps_against_forward(model, ids, mask, steps: int, atol: float, generator: torch.Generator) -> None:
    steps_match_forward(model, ids, mask, steps, atol, generator, compile=True)


def test_static_cache_length_rounds_up_to_whole_blocks():
    block = compiled_decoding.CACHE_BLOCK
    assert [static_cache_length(n) for n in (1, block, block + 1, 3 * block - 1)] == [block, block, 2 * block,
                                                                                       3 * block]


def test_row_block_operator_equals_the_product():
    g = torch.Generator().manual_seed(0)
    weight, x = torch.randn(10, 6, generator=g), torch.randn(3, 6, generator=g)
    got = row_block_product(x, weight, 2)
    assert got.is_contiguous()
    assert_close(got, x @ weight.T)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_compiled_steps_match_the_full_forward(name, tmp_path):
    """Left padding, past the sliding window (8), tied and untied heads, biases, llama3 rope."""
    model = ours_from_hf(tiny_llama(**CONFIGS[name]), tmp_path)
    g = torch.Generator().manual_seed(3)
    ids, mask = padded_prompt(g)
    _steps_against_forward(model, ids, mask, 14, 2e-5, g)


@pytest.mark.slow
def test_compiled_generation_equals_eager_across_cache_lengths():
    """Two prompt lengths that need two cache lengths (the second compile makes the length symbolic); greedy
    tokens equal the eager step's, and the static cache is a whole number of blocks."""
    model = _model()
    g = torch.Generator().manual_seed(1)
    for length, new in ((5, 20), (150, 12), (9, 30)):
        ids = torch.randint(0, 61, (2, length), generator=g)
        eager = model.generate(ids, max_new_tokens=new, eos_token_id=[])
        assert torch.equal(model.generate(ids, max_new_tokens=new, eos_token_id=[], compile=True), eager)
    step, first, _ = model.prepare_generation(ids, None, GenerationSettings(max_new_tokens=4, compile=True))
    step(first)
    assert step.__closure__ is not None
    decode = next(c.cell_contents for c in step.__closure__ if isinstance(c.cell_contents, CompiledDecodeStep))
    assert decode.cache.max_len == static_cache_length(ids.shape[1] + 4)


@pytest.mark.slow
def test_compiled_step_with_the_row_block_operator(monkeypatch):
    monkeypatch.setattr(compiled_decoding, "row_blocks_pay", lambda threads: True)
    model = _model()
    ids = torch.tensor([[3, 14, 15, 9, 26], [0, 0, 5, 35, 8]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    _steps_against_forward(model, ids, mask, 6, 2e-5, torch.Generator().manual_seed(2))


@pytest.mark.slow
def test_compiled_bfloat16_step_follows_the_bfloat16_forward():
    model = _model().to(torch.bfloat16)
    _steps_against_forward(model, torch.tensor([[3, 14, 15, 9, 26]]), None, 4, 0.05, torch.Generator().manual_seed(4))


@pytest.mark.slow
def test_compiled_int8_step_follows_the_int8_forward():
    """int8 projections and head (quantize_int8) keep torch's int8 kernel inside the graph; logits carry bf16
    rounding (the kernel's activations), so the bound is bf16's."""
    model = quantize_int8(_model())
    ids = torch.tensor([[3, 14, 15, 9, 26], [0, 0, 5, 35, 8]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    _steps_against_forward(model, ids, mask, 6, 0.02, torch.Generator().manual_seed(5))


class _Adapter(torch.nn.Module):
    """A LoRA-like wrapper around a projection (what peft puts in place of q_proj)."""

    def __init__(self, base: torch.nn.Linear) -> None:
        super().__init__()
        self.base = base
        self.delta = torch.nn.Linear(base.in_features, base.out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.delta(x)


def test_compile_refuses_models_it_cannot_compile():
    ids = torch.tensor([[1, 2, 3]])
    model = _model()
    model.model.layers[0].self_attn.q_proj = _Adapter(model.model.layers[0].self_attn.q_proj)
    with pytest.raises(ValueError, match="compile=True needs plain nn.Linear"):
        model.generate(ids, max_new_tokens=2, compile=True)
    t5 = EncoderDecoderModel({"model_type": "encoder_decoder", "vocab_size": 50, "d_model": 16, "num_heads": 2,
                              "num_layers": 1, "d_ff": 32}).eval()
    with pytest.raises(ValueError, match="decoder-only"):
        t5.generate(ids, max_new_tokens=2, compile=True)


@pytest.mark.slow
def test_cli_generate_compile_prints_the_eager_text(tmp_path, capsys):
    lines = ["The king and the queen spoke to the people.", "The river ran past the old mill under a grey sky."]
    tokenizer = BPETokenizer(vocab_size=280, show_progress=False).train(lines * 4)
    torch.manual_seed(0)
    model = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": tokenizer.vocab_size, "d_model": 32,
                              "num_heads": 4, "num_kv_heads": 2, "num_layers": 2, "d_ff": 48, "max_seq_len": 128})
    model.save_pretrained(tmp_path / "model")
    tokenizer.save(tmp_path / "model")
    texts = []
    for flags in ([], ["--compile"]):
        code = cli.main(["generate", "--model_path", str(tmp_path / "model"), "--prompt", "The king",
                         "--temperature", "0", "--max_new_tokens", "16", "--device", "cpu", *flags])
        assert code == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] and texts[0].startswith("The king")
    code = cli.main(["generate", "--model_path", str(tmp_path / "model"), "--prompt", "The king", "--compile",
                     "--quantize", "int8", "--temperature", "0", "--max_new_tokens", "16", "--device", "cpu"])
    assert code == 0 and capsys.readouterr().out.startswith("The king")
