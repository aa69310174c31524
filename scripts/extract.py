"""extract: write a slim inference directory (HF format, no trainer state) from a checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HF_CLASS = {"llama": "AutoModelForCausalLM", "mistral": "AutoModelForCausalLM", "bert": "AutoModelForMaskedLM",
            "t5": "AutoModelForSeq2SeqLM"}

EXAMPLES = """examples:
  python main.py extract --model_path checkpoints/tinyshakespeare-20261123-170000 --output_path exported/
  python main.py extract --model_path run/checkpoint-400 --output_path small/ --dtype bfloat16
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_path", required=True, help="checkpoint or run directory (best/ is used for a run)")
    parser.add_argument("--output_path", required=True, help="directory to write")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="cast the weights (default: keep float32)")
    parser.add_argument("--format", default="hf", choices=["hf"], help="output format (gguf: see the HF bridge)")
    parser.add_argument("--verbose", action="store_true")


def main(args: argparse.Namespace) -> int:
    from training import extract_model_for_inference

    out = extract_model_for_inference(args.model_path, args.output_path, dtype=args.dtype)
    model_type = json.loads((Path(out) / "config.json").read_text()).get("model_type")
    hf_class = HF_CLASS.get(model_type, "AutoModel")
    print(f"wrote {out} (config.json, model.safetensors, tokenizer.json); open it with "
          f"minillm.load_pretrained or transformers' {hf_class}.from_pretrained")
    return 0
