"""extract: write a slim inference directory (HF format), or one GGUF file plus an Ollama Modelfile.

``--format hf`` (the default) writes config.json, model.safetensors and the tokenizer, no trainer state.
``--format gguf`` (the default when ``--output_path`` ends in ``.gguf``) writes ``X.gguf`` for llama.cpp and Ollama
(Llama-family models, ours and HF's; ``--dtype f32|f16|q8_0``) and ``X.Modelfile`` beside it. An adapter
directory is first merged into its full-precision base (``--merge_into``, ``--base_model``); one of our
checkpoints, a .gguf file or an alias is first extracted to a temporary HF directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from minillm.errors import InputError

HF_CLASS = {"llama": "AutoModelForCausalLM", "mistral": "AutoModelForCausalLM", "bert": "AutoModelForMaskedLM",
            "t5": "AutoModelForSeq2SeqLM"}
FORMATS = ("hf", "gguf")
DTYPES = {"hf": ("float32", "bfloat16", "float16"), "gguf": ("f32", "f16", "q8_0")}

EXAMPLES = """examples:
  python main.py extract --model_path checkpoints/tinyshakespeare-20261123-170000 --output_path exported/
  python main.py extract --model_path run/checkpoint-400 --output_path small/ --dtype bfloat16
  python main.py extract --model_path checkpoints/run/best --output_path out/tiny.gguf --format gguf
  python main.py extract --model_path smollm2 --output_path out/smollm2.gguf --dtype q8_0
  python main.py extract --model_path output/paper_qa_model/final --output_path out/qa.gguf --merge_into original
  ollama create tiny -f out/tiny.Modelfile             # then: ollama run tiny
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_path", required=True,
                        help="checkpoint, run directory (best/ is used), HF directory, adapter directory, .gguf or alias")
    parser.add_argument("--output_path", required=True, help="directory to write (hf) or X.gguf file (gguf)")
    parser.add_argument("--format", default=None, choices=list(FORMATS),
                        help="hf: an HF directory; gguf: X.gguf + X.Modelfile (default: gguf when --output_path "
                             "ends in .gguf, else hf)")
    parser.add_argument("--dtype", default=None, choices=[*DTYPES["hf"], *DTYPES["gguf"]],
                        help="hf: float32 (default), bfloat16 or float16; gguf: f32 (default), f16 or q8_0")
    parser.add_argument("--merge_into", default=None, choices=["quantized", "original"],
                        help="adapter directories: merge into the de-quantized 4-bit base it trained on (quantized, "
                             "the default) or into the original full-precision weights")
    parser.add_argument("--base_model", default=None, help="adapter directories: the base to merge into "
                        "(default: the one adapter_config.json names)")
    parser.add_argument("--verbose", action="store_true")


def _format(args: argparse.Namespace) -> str:
    """The output format, after refusing an output path or dtype that belongs to the other one."""
    is_gguf_name = Path(args.output_path).suffix == ".gguf"
    fmt = args.format or ("gguf" if is_gguf_name else "hf")
    if fmt == "hf" and is_gguf_name:
        raise InputError(f"--output_path {args.output_path} names a GGUF file but --format is hf; pass --format gguf "
                         "or a directory name")
    if fmt == "gguf" and not is_gguf_name:
        raise InputError(f"--format gguf writes one file: --output_path must end in .gguf (e.g. out/model.gguf), "
                         f"got {args.output_path}")
    if args.dtype is not None and args.dtype not in DTYPES[fmt]:
        raise InputError(f"--dtype {args.dtype} is not a --format {fmt} dtype; use one of {', '.join(DTYPES[fmt])}")
    return fmt


def _adapter(args: argparse.Namespace) -> bool:
    """Whether ``--model_path`` is an adapter directory; refuses the merge flags on anything else."""
    from minillm.hf.loading import is_adapter_dir

    adapter = is_adapter_dir(Path(args.model_path).expanduser())
    if not adapter and (args.merge_into or args.base_model):
        raise InputError(f"--merge_into and --base_model apply to adapter directories (with adapter_config.json); "
                         f"{args.model_path} is not one")
    return adapter


def _merge(args: argparse.Namespace, output: Path, dtype: str) -> Path:
    """The adapter at ``--model_path`` merged into its base (:func:`minillm.hf.merge.merge_adapter`), saved with
    its tokenizer (the adapter's, else the base's) as an HF directory at ``output``."""
    from minillm.atomic import atomic_directory
    from minillm.hf.loading import model_directory, tokenizer_directory
    from minillm.hf.merge import merge_adapter
    from training.checkpoints import save_tokenizer
    from training.tokenizer_loading import has_tokenizer, load_tokenizer

    merged, difference = merge_adapter(args.model_path, base_model=args.base_model,
                                       merge_into=args.merge_into or "quantized", dtype=dtype)
    print(f"merged {args.model_path}: largest logits difference against the adapter model {difference:.3g}")
    adapter = Path(args.model_path).expanduser()
    if has_tokenizer(adapter) or not args.base_model:
        source = tokenizer_directory(adapter)
    else:
        source = model_directory(args.base_model)
    with atomic_directory(output) as tmp:
        merged.save_pretrained(str(tmp))
        if has_tokenizer(source):
            save_tokenizer(load_tokenizer(source), tmp)
    return output


def _plain_hf_directory(model_path: str) -> Path | None:
    """``model_path`` when it is a transformers directory minillm did not write (exported as it is), else None."""
    from minillm.atomic import has_marker

    path = Path(model_path).expanduser()
    if not (path / "config.json").is_file() or has_marker(path) or (path / "trainer_state").exists():
        return None
    return path


def _precheck(model_path: str) -> None:
    """Refuse a model GGUF export cannot write before anything is converted (when its config.json is at hand)."""
    from minillm.hf.gguf_export import check_exportable
    from training.model_extraction import resolve_model_path

    if not Path(model_path).expanduser().exists():
        return  # an alias: its config is known once it is loaded
    path = resolve_model_path(model_path)
    if path.is_dir() and (path / "config.json").is_file():
        check_exportable(json.loads((path / "config.json").read_text()), model_path)


@contextlib.contextmanager
def _hf_source(args: argparse.Namespace, adapter: bool, output: Path) -> Iterator[Path]:
    """An HF directory holding the model to export: the model itself, or a temporary extraction of it."""
    plain = None if adapter else _plain_hf_directory(args.model_path)
    if plain is not None:
        yield plain
        return
    from training import extract_model_for_inference

    scratch = output.parent if output.parent.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.src-", dir=scratch) as tmp:
        target = Path(tmp) / "model"
        if adapter:
            yield _merge(args, target, "float32")
        else:
            yield extract_model_for_inference(args.model_path, target, dtype="float32")


def _ollama_name(path: Path) -> str:
    """A model name Ollama accepts, from the file name."""
    return re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-.") or "model"


def _export_gguf(args: argparse.Namespace, adapter: bool) -> int:
    from minillm.hf.gguf_export import export_gguf, require_gguf
    from minillm.hf.modelfile import write_modelfile_for

    require_gguf()
    output = Path(args.output_path).expanduser()
    if output.is_dir():
        raise InputError(f"--output_path {args.output_path} is a directory; name the file, e.g. {output / 'model.gguf'}")
    if not adapter:
        _precheck(args.model_path)
    dtype = args.dtype or "f32"
    with _hf_source(args, adapter, output) as source:
        written = export_gguf(source, output, dtype=dtype)
    try:
        modelfile = write_modelfile_for(written)
    except BaseException:
        written.unlink(missing_ok=True)  # never leave a GGUF without its Modelfile
        raise
    size = written.stat().st_size / 2**20
    print(f"wrote {written} ({dtype}, {size:.1f} MiB) and {modelfile}")
    print(f"run it with Ollama: ollama create {_ollama_name(written)} -f {modelfile}; llama.cpp opens {written} "
          "directly")
    return 0


def main(args: argparse.Namespace) -> int:
    fmt = _format(args)
    adapter = _adapter(args)
    if fmt == "gguf":
        return _export_gguf(args, adapter)
    from training import extract_model_for_inference

    if adapter:
        out = _merge(args, Path(args.output_path), args.dtype or "float32")
    else:
        out = extract_model_for_inference(args.model_path, args.output_path, dtype=args.dtype)
    model_type = json.loads((Path(out) / "config.json").read_text()).get("model_type")
    hf_class = HF_CLASS.get(model_type, "AutoModel")
    print(f"wrote {out} (config.json, model.safetensors, tokenizer.json); open it with "
          f"minillm.load_pretrained or transformers' {hf_class}.from_pretrained")
    return 0
