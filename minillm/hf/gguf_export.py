"""Write a Llama-family HF directory (ours or transformers') as one GGUF file llama.cpp and Ollama run.

``export_gguf(model_dir, "out/model.gguf", dtype="f32" | "f16" | "q8_0")`` reads ``config.json`` and
``model.safetensors`` (or shards) of a ``llama`` / ``mistral`` model (our DecoderOnlyModel saves exactly
transformers' Llama names and config, so ours and HF's take the same path) and writes, with the ``gguf``
package and no llama.cpp checkout:

* the hyper-parameters under ``llama.*`` (context and embedding length, blocks, feed-forward length, heads and
  KV heads, rope base, dimension count and scaling, RMS-norm epsilon, vocabulary size);
* the tensors under their GGUF names (``token_embd``, ``blk.N.attn_q`` ..., ``output_norm``, ``output``; a tied
  head writes no ``output``), q and k permuted as llama.cpp's converter does (its rope pairs dimension i with
  i + 1, transformers' with i + head_dim/2); norms and biases stay F32, the 2-D weights take ``dtype``
  (``q8_0``: blocks of 32 with one scale each; a weight whose rows are not a multiple of 32 falls back to F16);
* the tokenizer and chat template (:mod:`minillm.hf.gguf_tokenizer`).

Anything else (a BERT, a T5, an unknown tensor, an activation or rope scaling llama.cpp's Llama does not run)
is refused in one line before anything is written. The file is written to a temporary sibling and renamed into
place, so ``output_path`` is either the complete new file or untouched. All weights are held in memory while
writing (about the size of the output file, plus one float32 tensor at a time).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from minillm.atomic import usual_mode
from minillm.checkpoint import read_config, read_weights
from minillm.errors import InputError, MissingDependencyError

from .gguf_tokenizer import GGUFVocab, read_vocab

logger = logging.getLogger(__name__)

ARCHITECTURES = ("llama", "mistral")  # config.json model_type values written as llama.cpp's "llama"
DTYPES = ("f32", "f16", "q8_0")
ROPE_TYPES = ("default", "linear", "llama3")
# transformers' names -> gguf.MODEL_TENSOR members (the model-level tensors, then those of layer N)
GLOBAL_TENSORS = {"model.embed_tokens": "TOKEN_EMBD", "model.norm": "OUTPUT_NORM", "lm_head": "OUTPUT"}
LAYER_TENSORS = {
    "input_layernorm": "ATTN_NORM", "self_attn.q_proj": "ATTN_Q", "self_attn.k_proj": "ATTN_K",
    "self_attn.v_proj": "ATTN_V", "self_attn.o_proj": "ATTN_OUT", "post_attention_layernorm": "FFN_NORM",
    "mlp.gate_proj": "FFN_GATE", "mlp.up_proj": "FFN_UP", "mlp.down_proj": "FFN_DOWN",
}
LAYER_NAME = re.compile(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)")
IGNORED = re.compile(r".*rotary_emb\.inv_freq")  # a buffer some old checkpoints saved


def require_gguf() -> Any:
    """The ``gguf`` module, or a MissingDependencyError with the install command."""
    try:
        import gguf
    except ImportError as exc:
        raise MissingDependencyError("GGUF export needs the gguf package: pip install 'minillm[gguf]'") from exc
    return gguf


def check_exportable(config: dict[str, Any], source: str | os.PathLike = "the model") -> None:
    """Refuse, in one line, a config.json whose model GGUF export cannot write (see the module docstring)."""
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise InputError(f"{source} is a {model_type!r} model; GGUF export writes Llama-family decoders only "
                         f"(model_type {' or '.join(ARCHITECTURES)})")
    act = config.get("hidden_act", "silu")
    if act != "silu":
        raise InputError(f"{source} uses hidden_act {act!r}; llama.cpp's Llama runs silu only")
    kind = _rope(config).get("rope_type", _rope(config).get("type", "default"))
    if kind not in ROPE_TYPES:
        raise InputError(f"{source} uses rope scaling {kind!r}; GGUF export writes {', '.join(ROPE_TYPES)}")


def _rope(config: dict[str, Any]) -> dict[str, Any]:
    """Rope settings in either transformers layout (``rope_parameters``, or ``rope_theta`` + ``rope_scaling``)."""
    return {**(config.get("rope_scaling") or {}), **(config.get("rope_parameters") or {})}


def _head_dim(config: dict[str, Any]) -> int:
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def export_gguf(model_dir: str | os.PathLike, output_path: str | os.PathLike, dtype: str = "f32",
                tokenizer_dir: str | os.PathLike | None = None) -> Path:
    """Write ``model_dir`` (an HF-format Llama/Mistral directory) as the GGUF file ``output_path``; return it.

    ``dtype``: ``f32`` (exact), ``f16`` or ``q8_0`` for the 2-D weights. ``tokenizer_dir``: where the HF
    ``tokenizer.json`` (with ``tokenizer_config.json``) lives, when not in ``model_dir``.
    """
    if dtype not in DTYPES:
        raise InputError(f"GGUF dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)}")
    output = Path(output_path).expanduser()
    if output.suffix != ".gguf":
        raise InputError(f"GGUF output path {str(output)!r} must end in .gguf (e.g. out/model.gguf)")
    if output.is_dir():
        raise InputError(f"GGUF output path {str(output)!r} is a directory; name the file, e.g. {output / 'model.gguf'}")
    model_dir = Path(model_dir).expanduser()
    config = read_config(model_dir)
    check_exportable(config, model_dir)
    gguf = require_gguf()
    vocab = read_vocab(Path(tokenizer_dir).expanduser() if tokenizer_dir else model_dir, config["vocab_size"])
    state = read_weights(model_dir)
    with _atomic_file(output) as tmp:
        writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
        try:
            _write_metadata(writer, gguf, config, vocab, dtype, output.stem)
            count = 0
            for name, tensor in _gguf_tensors(state, config, model_dir):  # empties state: one copy in memory
                data, kind = _encode(gguf, name, tensor, dtype)
                writer.add_tensor(name, data, raw_dtype=kind)
                count += 1
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    logger.info("wrote %s (%d tensors, %s)", output, count, dtype)
    return output


def _write_metadata(writer: Any, gguf: Any, config: dict[str, Any], vocab: GGUFVocab, dtype: str,
                    name: str) -> None:
    """The general.*, llama.* and tokenizer.* keys."""
    file_types = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                  "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    heads = config["num_attention_heads"]
    writer.add_context_length(config.get("max_position_embeddings", 2048))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    rope = _rope(config)
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    if config.get("head_dim"):
        writer.add_key_length(config["head_dim"])
        writer.add_value_length(config["head_dim"])
    writer.add_vocab_size(config["vocab_size"])
    writer.add_rope_dimension_count(_head_dim(config))
    if rope.get("rope_type", rope.get("type")) == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    window = config.get("sliding_window")
    if window and window < config.get("max_position_embeddings", 0):
        logger.warning("sliding_window %d is not written: llama.cpp's Llama attends to the whole context", window)
    writer.add_file_type(file_types[dtype])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab.write(writer)


def permute(weight: torch.Tensor, n_head: int) -> torch.Tensor:
    """llama.cpp's q/k permutation (``LlamaModel.permute``): transformers' half-split rope layout -> interleaved.

    Example (one head of dimension 4: rows [a0, a1, b0, b1] become [a0, b0, a1, b1]):
        >>> permute(torch.arange(4.0)[:, None], n_head=1).flatten().tolist()
        [0.0, 2.0, 1.0, 3.0]
    """
    return (weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])  # (h, 2, hd/2, ...)
            .swapaxes(1, 2)  # (h, hd/2, 2, ...)
            .reshape(weight.shape))


def _gguf_tensors(state: dict[str, torch.Tensor], config: dict[str, Any],
                  source: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """``(GGUF name, float32 tensor)`` for every weight, q/k permuted, popped from ``state`` one at a time;
    an unknown name is an InputError."""
    gguf = require_gguf()
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    tied = bool(config.get("tie_word_embeddings", False))
    if not tied and "lm_head.weight" not in state:
        raise InputError(f"{source} has no lm_head.weight and does not tie it to the embeddings; the checkpoint is "
                         "incomplete")
    for name in list(state):
        tensor = state.pop(name)
        if IGNORED.fullmatch(name) or (tied and name == "lm_head.weight"):
            continue
        tensor = tensor.detach().to(torch.float32)
        match = LAYER_NAME.fullmatch(name)
        stem, suffix = name.rsplit(".", 1)
        if match is not None and match.group(2) in LAYER_TENSORS:
            block, module, suffix = int(match.group(1)), match.group(2), match.group(3)
            key = gguf.TENSOR_NAMES[getattr(gguf.MODEL_TENSOR, LAYER_TENSORS[module])].format(bid=block)
            if module == "self_attn.q_proj":
                tensor = permute(tensor, heads)
            elif module == "self_attn.k_proj":
                tensor = permute(tensor, kv_heads)
        elif stem in GLOBAL_TENSORS and suffix == "weight":
            key = gguf.TENSOR_NAMES[getattr(gguf.MODEL_TENSOR, GLOBAL_TENSORS[stem])]
        else:
            raise InputError(f"{source}: tensor {name!r} has no GGUF name in the Llama architecture; expected "
                             "model.embed_tokens, model.norm, lm_head or model.layers.N.<attention/MLP/norm>")
        yield f"{key}.{suffix}", tensor
    freqs = _llama3_rope_factors(config)
    if freqs is not None:
        yield f"{gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS]}.weight", freqs


def _llama3_rope_factors(config: dict[str, Any]) -> torch.Tensor | None:
    """Llama 3.1's per-frequency rope divisors as the ``rope_freqs`` tensor llama.cpp reads (None without them)."""
    rope = _rope(config)
    if rope.get("rope_type", rope.get("type")) != "llama3":
        return None
    base, dim = float(rope.get("rope_theta", config.get("rope_theta", 10000.0))), _head_dim(config)
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old = rope.get("original_max_position_embeddings", 8192)
    factors = []
    for freq in 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)):
        wavelen = 2 * math.pi / float(freq)
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(factors, dtype=torch.float32)


def _encode(gguf: Any, name: str, tensor: torch.Tensor, dtype: str) -> tuple[Any, Any]:
    """``(numpy data, GGMLQuantizationType)``: 1-D tensors and norms F32, 2-D weights as ``dtype``."""
    kinds = gguf.GGMLQuantizationType
    data = tensor.numpy()
    if dtype == "f32" or data.ndim <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight"):
        return data, kinds.F32
    if dtype == "q8_0":
        try:
            return gguf.quants.quantize(data, kinds.Q8_0), kinds.Q8_0
        except gguf.QuantError as exc:
            logger.warning("%s: %s; written as F16", name, exc)
    return data.astype("float16"), kinds.F16


@contextlib.contextmanager
def _atomic_file(final: Path) -> Iterator[Path]:
    """A temporary file beside ``final`` that replaces it in one rename when the body succeeds; if the body fails,
    the temporary file (and the folder made for it, if empty) is removed and ``final`` is left as it was."""
    created = not final.parent.exists()
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, usual_mode(0o600, is_dir=False))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if created:
            with contextlib.suppress(OSError):
                final.parent.rmdir()  # the folder this call made, when still empty
        raise
