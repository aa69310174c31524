"""GGUF export (minillm.hf.gguf_export) and the Ollama Modelfile (minillm.hf.modelfile).

Fast: names, shapes and metadata read back with gguf.GGUFReader; the exported f32 file read back through our GGUF
reader gives the source model's logits (which proves the q/k permutation); refusals leave nothing behind.
Slow: the files run in llama.cpp (llama-cpp-python) with the same greedy tokens as our model.
"""

from __future__ import annotations

import doctest
import json
import logging
import os
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from minillm import DecoderOnlyModel, EncoderDecoderModel, EncoderOnlyModel, ModelConfig
from minillm.errors import InputError
from minillm.hf import gguf_export, gguf_tokenizer, modelfile
from minillm.hf.gguf_export import export_gguf, permute
from minillm.hf.gguf_tokenizer import pre_tokenizer_name, read_vocab
from minillm.hf.modelfile import (
    default_system_prompt,
    detect_chat_format,
    modelfile_text,
    write_modelfile_for,
)
from tokenizers_bpe import CHATML_TEMPLATE, BPETokenizer

pytest.importorskip("transformers")

TEXT = ["The king and the queen spoke to the people about bread, wine and war.",
        "While the river ran past the old mill under a grey sky, 1234 birds sang."] * 30
LAYER = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]


@pytest.fixture(scope="module")
def tokenizer() -> BPETokenizer:
    return BPETokenizer(vocab_size=290, show_progress=False).train(TEXT)  # 290 tokens, 300 rows


@pytest.fixture(scope="module")
def ours_dir(tmp_path_factory, tokenizer) -> Path:
    """Our tiny DecoderOnlyModel (GQA, tied head) saved with our tokenizer (fewer tokens than embedding rows)."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=300, d_model=64, num_heads=4, num_kv_heads=2, num_layers=2, max_seq_len=128,
                         initializer_range=0.3, rope_theta=10000.0, bos_token_id=0, eos_token_id=0, pad_token_id=3)
    return DecoderOnlyModel(config).eval().save_pretrained(tmp_path_factory.mktemp("ours") / "m", tokenizer=tokenizer)


def tiny_hf(directory: Path, tokenizer: BPETokenizer, **overrides) -> Path:
    """A random transformers Llama (untied, full multi-head attention by default) saved with ``tokenizer``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    kwargs = {"vocab_size": 300, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 128,
              "tie_word_embeddings": False, "initializer_range": 0.3, "rms_norm_eps": 1e-6}
    LlamaForCausalLM(LlamaConfig(**{**kwargs, **overrides})).save_pretrained(directory)
    tokenizer.save(directory)
    return directory


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, tokenizer) -> Path:
    return tiny_hf(tmp_path_factory.mktemp("hf") / "m", tokenizer, attention_bias=True)


def _reader(path: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(str(path))


def _value(reader: gguf.GGUFReader, key: str):
    return reader.get_field(key).contents()


def _ids(n: int = 12) -> torch.Tensor:
    return torch.randint(5, 290, (1, n), generator=torch.Generator().manual_seed(3))


def test_names_shapes_and_metadata(ours_dir, tokenizer, tmp_path):
    path = export_gguf(ours_dir, tmp_path / "tiny.gguf")
    reader = _reader(path)
    tensors = {t.name: t for t in reader.tensors}
    expected = {"token_embd.weight", "output_norm.weight"} | {f"blk.{b}.{n}.weight" for b in (0, 1) for n in LAYER}
    assert set(tensors) == expected  # tied head: no output.weight
    assert tensors["token_embd.weight"].shape.tolist() == [64, 300]  # GGUF lists dimensions innermost first
    assert tensors["blk.0.attn_k.weight"].shape.tolist() == [64, 32]  # 2 KV heads of 16
    assert tensors["blk.1.ffn_down.weight"].shape.tolist() == [192, 64]
    assert {t.tensor_type.name for t in tensors.values()} == {"F32"}
    assert _value(reader, "general.architecture") == "llama"
    values = {key: _value(reader, f"llama.{key}") for key in (
        "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
        "attention.head_count_kv", "vocab_size", "rope.dimension_count")}
    assert values == {"context_length": 128, "embedding_length": 64, "block_count": 2, "feed_forward_length": 192,
                      "attention.head_count": 4, "attention.head_count_kv": 2, "vocab_size": 300,
                      "rope.dimension_count": 16}
    assert _value(reader, "llama.rope.freq_base") == 10000.0
    assert _value(reader, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-5)
    assert _value(reader, "tokenizer.ggml.model") == "gpt2"
    assert _value(reader, "tokenizer.ggml.pre") == "llama-bpe"  # our GPT-4 regex splits as Llama 3's
    tokens, types = _value(reader, "tokenizer.ggml.tokens"), _value(reader, "tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == 300
    assert tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] and types[:3] == [3, 3, 3]
    assert tokens[-1] == "[PAD299]" and types[-1] == 5  # rows the tokenizer does not use
    assert tokens[tokenizer.encode("the")[0]] != "" and 1 in types
    assert len(_value(reader, "tokenizer.ggml.merges")) == len(json.loads(
        (ours_dir / "tokenizer.json").read_text())["model"]["merges"])
    assert _value(reader, "tokenizer.ggml.eos_token_id") == 0
    assert _value(reader, "tokenizer.ggml.padding_token_id") == 3
    assert _value(reader, "tokenizer.ggml.add_bos_token") is False
    assert _value(reader, "tokenizer.chat_template") == CHATML_TEMPLATE


@pytest.mark.parametrize("source", ["ours", "hf"])
def test_f32_round_trip_gives_the_same_logits(source, ours_dir, hf_dir, tmp_path):
    directory = ours_dir if source == "ours" else hf_dir
    path = export_gguf(directory, tmp_path / "m.gguf")
    if source == "hf":
        assert {"output.weight", "blk.0.attn_q.bias", "blk.1.attn_k.bias"} <= {t.name for t in _reader(path).tensors}
    original = DecoderOnlyModel.from_pretrained(directory).eval()
    back = DecoderOnlyModel.from_pretrained(path).eval()  # our GGUF reader: transformers un-permutes q and k
    with torch.no_grad():
        assert_close(back(input_ids=_ids()).logits, original(input_ids=_ids()).logits, atol=1e-5, rtol=1e-5)


def test_f16_and_q8_0_quantize_the_matrices_only(ours_dir, tmp_path):
    original = DecoderOnlyModel.from_pretrained(ours_dir).eval()
    with torch.no_grad():
        reference = original(input_ids=_ids()).logits
    for dtype, kind, tolerance in (("f16", "F16", 2e-2), ("q8_0", "Q8_0", 0.2)):
        path = export_gguf(ours_dir, tmp_path / f"m-{dtype}.gguf", dtype=dtype)
        kinds = {t.name: t.tensor_type.name for t in _reader(path).tensors}
        assert kinds["blk.0.attn_q.weight"] == kinds["token_embd.weight"] == kind
        assert kinds["blk.0.attn_norm.weight"] == kinds["output_norm.weight"] == "F32"
        back = DecoderOnlyModel.from_pretrained(path).eval()
        with torch.no_grad():
            difference = (back(input_ids=_ids()).logits - reference).abs().max().item()
        assert difference < tolerance * reference.abs().max().item(), (dtype, difference)
    assert (tmp_path / "m-q8_0.gguf").stat().st_size < (tmp_path / "m-f16.gguf").stat().st_size


def test_permute_is_llama_cpp_s(tmp_path):
    weight = torch.arange(2 * 8 * 3, dtype=torch.float32).reshape(16, 3)  # 2 heads of 8 rows
    expected = weight.numpy().reshape(2, 2, 4, 3).swapaxes(1, 2).reshape(16, 3)  # convert_hf_to_gguf's permute
    assert np.array_equal(permute(weight, 2).numpy(), expected)
    bias = torch.arange(16.0)
    assert permute(bias, 2)[:4].tolist() == [0.0, 4.0, 1.0, 5.0]


def test_llama3_rope_writes_rope_freqs(tmp_path, tokenizer):
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    directory = tiny_hf(tmp_path / "m", tokenizer, rope_parameters=rope)
    reader = _reader(export_gguf(directory, tmp_path / "m.gguf"))
    freqs = next(t for t in reader.tensors if t.name == "rope_freqs.weight")
    assert freqs.shape.tolist() == [8] and freqs.data[0] == 1.0 and freqs.data[-1] == 8.0
    assert _value(reader, "llama.rope.freq_base") == 500000.0


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("family", ["bert", "t5"])
def test_other_architectures_are_refused_and_nothing_is_written(family, tmp_path, tokenizer):
    kinds = {"bert": (EncoderOnlyModel, "encoder_only"), "t5": (EncoderDecoderModel, "encoder_decoder")}
    cls, model_type = kinds[family]
    directory = cls(ModelConfig(model_type=model_type, vocab_size=300, d_model=32, num_heads=2, num_layers=1,
                                decoder_start_token_id=0)).save_pretrained(tmp_path / "m", tokenizer=tokenizer)
    out = tmp_path / "out"
    with pytest.raises(InputError) as exc:
        export_gguf(directory, out / "m.gguf")
    assert f"'{family}' model" in _one_line(exc) and "Llama-family" in str(exc.value)
    assert not out.exists()


def test_bad_dtype_path_and_activation_are_refused(ours_dir, tmp_path):
    with pytest.raises(InputError, match="use one of f32, f16, q8_0"):
        export_gguf(ours_dir, tmp_path / "m.gguf", dtype="q4_k")
    with pytest.raises(InputError, match="must end in .gguf"):
        export_gguf(ours_dir, tmp_path / "m.bin")
    config = json.loads((ours_dir / "config.json").read_text())
    (tmp_path / "gelu").mkdir()
    for name in os.listdir(ours_dir):
        if name != "config.json":
            os.symlink(ours_dir / name, tmp_path / "gelu" / name)
    (tmp_path / "gelu" / "config.json").write_text(json.dumps({**config, "hidden_act": "gelu"}))
    with pytest.raises(InputError, match="hidden_act 'gelu'"):
        export_gguf(tmp_path / "gelu", tmp_path / "m.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gelu"]


def test_an_unknown_tensor_is_refused(ours_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    directory = tmp_path / "m"
    directory.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (directory / name).write_bytes((ours_dir / name).read_bytes())
    state = load_file(str(ours_dir / "model.safetensors"))
    save_file({**state, "model.layers.0.self_attn.q_norm.weight": torch.ones(16)}, str(directory / "model.safetensors"))
    with pytest.raises(InputError) as exc:
        export_gguf(directory, tmp_path / "out" / "m.gguf")
    assert "'model.layers.0.self_attn.q_norm.weight' has no GGUF name" in _one_line(exc)
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(ours_dir, tmp_path, monkeypatch):
    target = tmp_path / "m.gguf"
    target.write_bytes(b"old")

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", broken)
    with pytest.raises(OSError, match="disk full"):
        export_gguf(ours_dir, target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.gguf"]


def test_a_failed_write_into_a_new_folder_removes_the_folder(ours_dir, tmp_path, monkeypatch):
    def broken(self):
        raise OSError("full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_kv_data_to_file", broken)
    with pytest.raises(OSError, match="full"):
        export_gguf(ours_dir, tmp_path / "new" / "m.gguf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", [gguf_export, gguf_tokenizer, modelfile])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_pre_tokenizer_names():
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    smollm = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]}
    assert pre_tokenizer_name("t.json", byte_level) == "gpt-2"
    assert pre_tokenizer_name("t.json", smollm) == "smollm"
    with pytest.raises(InputError) as exc:
        pre_tokenizer_name("t.json", {"type": "Metaspace", "replacement": "▁"})
    assert "(Metaspace)" in _one_line(exc) and "llama.cpp" in str(exc.value)


def test_wordpiece_and_oversized_tokenizers_are_refused(minilm_path, ours_dir, tokenizer, tmp_path):
    with pytest.raises(InputError) as exc:
        read_vocab(minilm_path, 30522)
    assert "WordPiece" in _one_line(exc) and "byte-level BPE" in str(exc.value)
    with pytest.raises(InputError, match="has token id 289 but the model has 100 embedding rows"):
        read_vocab(ours_dir, 100)
    with pytest.raises(InputError, match="holds no tokenizer.json"):
        export_gguf(ours_dir, tmp_path / "m.gguf", tokenizer_dir=tmp_path)


def _smollm2_template(smollm2_gguf: Path) -> str:
    return _value(_reader(smollm2_gguf), "tokenizer.chat_template")


def test_smollm2_modelfile_is_chatml(smollm2_gguf):
    template = _smollm2_template(smollm2_gguf)
    assert detect_chat_format(template).name == "chatml"
    text = modelfile_text("smollm2.gguf", template, ["<|im_end|>"])
    lines = text.splitlines()
    assert "FROM ./smollm2.gguf" in lines
    assert 'TEMPLATE """{{- if .Messages }}' in lines
    assert "{{- range .Messages }}<|im_start|>{{ .Role }}" in lines and "{{ .Content }}<|im_end|>" in lines
    assert "{{ .Prompt }}<|im_end|>" in lines and "{{ end }}<|im_start|>assistant" in lines
    assert [line for line in lines if line.startswith("PARAMETER")] == [
        'PARAMETER stop "<|im_start|>"', 'PARAMETER stop "<|im_end|>"']
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in lines


def test_modelfile_of_an_exported_file(ours_dir, tmp_path):
    path = export_gguf(ours_dir, tmp_path / "tiny.gguf")
    modelfile = write_modelfile_for(path)
    assert modelfile == tmp_path / "tiny.Modelfile"
    text = modelfile.read_text()
    assert "FROM ./tiny.gguf\n" in text and "<|im_start|>{{ .Role }}" in text
    assert 'PARAMETER stop "<|endoftext|>"' in text.splitlines()  # our eos, after ChatML's two stops
    assert "SYSTEM" not in text and default_system_prompt(CHATML_TEMPLATE) is None


def test_other_chat_formats_and_the_fallback(caplog):
    llama3 = "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}"
    assert 'PARAMETER stop "<|eot_id|>"' in modelfile_text("m.gguf", llama3).splitlines()
    assert detect_chat_format("{{ '[INST] ' + m['content'] + ' [/INST]' }}").name == "inst"
    with caplog.at_level(logging.WARNING, logger="minillm.hf.modelfile"):
        text = modelfile_text("m.gguf", "{{ messages[0]['content'] }}", ["</s>"])
    assert 'TEMPLATE """{{ .Prompt }}"""' in text and 'PARAMETER stop "</s>"' in text
    assert "not recognised" in caplog.text


# ---------------------------------------------------------------------------------------------- llama.cpp (slow)
PROMPT = "<|im_start|>user\nWhat is a transformer model?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def llama():
    """Open GGUF files with llama-cpp-python, greedy and with an F32 KV cache (its default F16 cache would round).

    llama-cpp-python 0.3.36 crashes (SIGSEGV) on quantized weights placed in the CPU "extra" buffer types (AMX /
    repacked weights) on some CPUs, this machine's included, even for llama.cpp's own Q8_0 and Q4_1 files;
    ``use_extra_bufts=False``, which ``Llama()`` does not expose, avoids that path.
    """
    import llama_cpp

    default = llama_cpp.llama_cpp.llama_model_default_params

    def params():
        value = default()
        value.use_extra_bufts = False
        return value

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(llama_cpp.llama_cpp, "llama_model_default_params", params)

        def open_file(path: Path, n_ctx: int = 256):
            return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, verbose=False, logits_all=False,
                                   type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32, n_threads=2)

        yield open_file


def _last_logits(llm) -> np.ndarray:
    import llama_cpp

    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()


def llama_greedy(llm, ids: list[int], n: int) -> list[int]:
    """``n`` greedy tokens after ``ids`` (never stopping at eos), computed by llama.cpp."""
    llm.reset()
    llm.eval(ids)
    out = []
    for _ in range(n):
        out.append(int(np.argmax(_last_logits(llm))))
        llm.eval([out[-1]])
    return out


def _ours_greedy(model, ids: list[int], n: int) -> list[int]:
    with torch.no_grad():
        return model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=[])[0, len(ids):].tolist()


def _agreement(a: list[int], b: list[int]) -> int:
    """How many leading tokens agree (after the first difference the two continue different texts)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["ours-gqa-tied", "hf-bias-untied", "hf-llama3-rope"])
def test_tiny_models_in_llama_cpp(variant, ours_dir, hf_dir, tokenizer, llama, tmp_path):
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    directory = {"ours-gqa-tied": ours_dir, "hf-bias-untied": hf_dir}.get(variant) or tiny_hf(
        tmp_path / "m", tokenizer, num_key_value_heads=2, rope_parameters=rope)
    llm = llama(export_gguf(directory, tmp_path / "m.gguf"), n_ctx=128)
    model = DecoderOnlyModel.from_pretrained(directory).eval()
    ids = tokenizer.encode("The king spoke to the people about bread and war, 1234 times.")
    assert llm.tokenize(tokenizer.decode(ids).encode(), add_bos=False, special=True) == ids
    llm.eval(ids)
    with torch.no_grad():
        expected = model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    np.testing.assert_allclose(_last_logits(llm), expected, atol=1e-4, rtol=1e-4)
    assert llama_greedy(llm, ids, 24) == _ours_greedy(model, ids, 24)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """SmolLM2 as our DecoderOnlyModel + tokenizer, and its slim HF directory (the export's input)."""
    from training import extract_model_for_inference, load_model_and_tokenizer

    model, tok = load_model_and_tokenizer("smollm2")
    directory = extract_model_for_inference("smollm2", tmp_path_factory.mktemp("smollm2") / "slim")
    return model.eval(), tok, directory


@pytest.mark.slow
def test_smollm2_in_llama_cpp_f32_identical_and_q8_0_agreement(smollm2, llama, tmp_path):
    model, tok, directory = smollm2
    ids = tok.encode(PROMPT)
    ours = _ours_greedy(model, ids, 32)
    assert len(tok.decode(ours).strip()) > 10
    f32 = llama(export_gguf(directory, tmp_path / "smollm2-f32.gguf", dtype="f32"))
    assert f32.tokenize(PROMPT.encode(), add_bos=False, special=True) == ids
    assert llama_greedy(f32, ids, 32) == ours
    q8 = llama(export_gguf(directory, tmp_path / "smollm2-q8_0.gguf", dtype="q8_0"))
    agreement = _agreement(llama_greedy(q8, ids, 32), ours)
    print(f"SmolLM2 q8_0 in llama.cpp: {agreement}/32 leading greedy tokens agree with our float32 model")
    assert agreement >= 8, f"only {agreement}/32 leading greedy tokens agree"
    assert (tmp_path / "smollm2-q8_0.gguf").stat().st_size < 0.3 * (tmp_path / "smollm2-f32.gguf").stat().st_size
