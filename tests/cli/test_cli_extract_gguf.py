"""``main.py extract --format gguf``: X.gguf + X.Modelfile from our checkpoints, HF directories and adapters; bad
input is one line on stderr, exit 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest
import torch

import main as cli
from minillm import DecoderOnlyModel, EncoderOnlyModel, ModelConfig
from tokenizers_bpe import BPETokenizer

from .cli_helpers import run_cli, write_corpus

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> BPETokenizer:
    corpus = write_corpus(tmp_path_factory.mktemp("corpus") / "train.txt", paragraphs=40)
    return BPETokenizer(vocab_size=300, show_progress=False).train(corpus.read_text().split("\n\n"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer) -> Path:
    """One of our decoder checkpoints (config, weights, tokenizer, the .minillm marker), small enough for seconds."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=300, d_model=32, num_heads=2, num_layers=1, max_seq_len=32)
    return DecoderOnlyModel(config).save_pretrained(tmp_path_factory.mktemp("run") / "best", tokenizer=tokenizer)


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_extract_writes_gguf_and_modelfile(checkpoint, tmp_path):
    result = run_cli("extract", "--model_path", str(checkpoint), "--output_path", "out/tiny.gguf", "--format", "gguf",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "out"
    assert _names(out) == ["tiny.Modelfile", "tiny.gguf"]  # no temporary extraction left behind
    reader = gguf.GGUFReader(str(out / "tiny.gguf"))
    assert reader.get_field("general.architecture").contents() == "llama"
    assert {t.tensor_type.name for t in reader.tensors} == {"F32"}
    assert "FROM ./tiny.gguf" in (out / "tiny.Modelfile").read_text()
    assert "tiny.gguf" in result.stdout and "tiny.Modelfile" in result.stdout
    assert "ollama create tiny -f out/tiny.Modelfile" in result.stdout


def test_a_gguf_name_picks_the_format_and_q8_0(checkpoint, tmp_path, capsys):
    code, out, err = _run(["extract", "--model_path", str(checkpoint), "--output_path", str(tmp_path / "t.gguf"),
                           "--dtype", "q8_0"], capsys)
    assert code == 0, err
    kinds = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(tmp_path / "t.gguf")).tensors}
    assert kinds["blk.0.attn_q.weight"] == "Q8_0" and kinds["output_norm.weight"] == "F32"
    assert "(q8_0," in out and _names(tmp_path) == ["t.Modelfile", "t.gguf"]


def test_an_hf_directory_is_exported_as_it_is(tokenizer, tmp_path, capsys):
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = tmp_path / "hf"
    LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(hf)
    tokenizer.save(hf)
    code, _, err = _run(["extract", "--model_path", str(hf), "--output_path", str(tmp_path / "o" / "h.gguf")], capsys)
    assert code == 0, err
    assert "output.weight" in {t.name for t in gguf.GGUFReader(str(tmp_path / "o" / "h.gguf")).tensors}
    assert _names(tmp_path) == ["hf", "o"]


def test_an_adapter_is_merged_then_exported(tokenizer, tmp_path, capsys):
    import peft
    from transformers import LlamaConfig, LlamaForCausalLM

    base = tmp_path / "base"
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    model.save_pretrained(base)
    tokenizer.save(base)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
    lora.peft_config["default"].base_model_name_or_path = str(base)
    lora.save_pretrained(tmp_path / "adapter")
    code, out, err = _run(["extract", "--model_path", str(tmp_path / "adapter"), "--output_path",
                           str(tmp_path / "merged.gguf"), "--merge_into", "original"], capsys)
    assert code == 0, err
    assert "merged" in out and (tmp_path / "merged.Modelfile").is_file()
    back = DecoderOnlyModel.from_pretrained(tmp_path / "merged.gguf").eval()
    ids = torch.randint(0, 300, (1, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = lora.merge_and_unload()(input_ids=ids).logits
        torch.testing.assert_close(back(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--output_path", "{tmp}/out/x.gguf", "--format", "hf"], "names a GGUF file but --format is hf"),
    (["--output_path", "{tmp}/out/", "--format", "gguf"], "must end in .gguf"),
    (["--output_path", "{tmp}/out/x.gguf", "--dtype", "bfloat16"], "--dtype bfloat16 is not a --format gguf dtype"),
    (["--output_path", "{tmp}/out/", "--dtype", "q8_0"], "--dtype q8_0 is not a --format hf dtype"),
    (["--output_path", "{tmp}/out/x.gguf", "--merge_into", "original"], "apply to adapter directories"),
])
def test_bad_flags_are_one_line_and_write_nothing(extra, fragment, checkpoint, tmp_path, capsys):
    argv = ["extract", "--model_path", str(checkpoint), *(a.replace("{tmp}", str(tmp_path)) for a in extra)]
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and fragment in err, err
    assert _names(tmp_path) == []


def test_a_bert_checkpoint_is_refused_in_one_line(tokenizer, tmp_path, capsys):
    config = ModelConfig(model_type="encoder_only", vocab_size=300, d_model=32, num_heads=2, num_layers=1)
    bert = EncoderOnlyModel(config).save_pretrained(tmp_path / "bert", tokenizer=tokenizer)
    code, out, err = _run(["extract", "--model_path", str(bert), "--output_path", str(tmp_path / "o" / "b.gguf")],
                          capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "'bert' model" in err and "Llama-family" in err
    assert _names(tmp_path) == ["bert"]


def test_a_missing_model_is_one_line(tmp_path, capsys):
    code, _, err = _run(["extract", "--model_path", str(tmp_path / "nope"), "--output_path",
                         str(tmp_path / "x.gguf")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not exist" in err
    assert _names(tmp_path) == []


def test_help_shows_the_gguf_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["extract", "--help"])
    out = capsys.readouterr().out
    assert "--format gguf" in out and "ollama create" in out and "q8_0" in out
