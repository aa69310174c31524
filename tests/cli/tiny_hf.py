"""A tiny transformers Llama with a small BPE tokenizer in one directory, and instruction / chat / text data: what
fine-tuning tests train in seconds (the real-weights runs use SmolLM2 from its package)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

WORDS = ("cell", "gene", "protein", "blood", "heart", "risk", "dose", "trial", "study", "patients", "tumor",
         "effect", "increase", "reduce", "yes", "no", "maybe", "the", "of", "and", "in", "with")


def instruction_records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` records of the seed's ``{"input", "output"}`` shape with a learnable answer."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        words = rng.sample(WORDS[:14], 4)
        answer = "yes" if "increase" in words or "risk" in words else "no"
        records.append({"input": f"Does the {' '.join(words)} study show an effect?", "output": f"{answer}."})
    return records


def chat_records(n: int, seed: int = 1) -> list[dict]:
    """``n`` chat records (``{"messages"}``; the loss falls on the assistant turn)."""
    return [{"messages": [{"role": "user", "content": r["input"]}, {"role": "assistant", "content": r["output"]}]}
            for r in instruction_records(n, seed)]


def write_json(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records))
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def make_tiny_llama(directory: Path, seed: int = 0) -> Path:
    """Save a random 2-layer LlamaForCausalLM and a 320-token BPE tokenizer (ChatML specials) in ``directory``."""
    import transformers

    from tokenizers_bpe import BPETokenizer

    texts = [r["input"] + " " + r["output"] for r in instruction_records(200)] + [" ".join(WORDS)] * 5
    tokenizer = BPETokenizer(vocab_size=320)
    tokenizer.train(texts)
    config = transformers.LlamaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    transformers.LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save(directory)
    return directory
