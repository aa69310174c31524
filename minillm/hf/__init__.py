"""The bridge to transformers / peft / bitsandbytes: the only code that imports them, lazily, inside functions."""

from .seed_models import load_llama3_8b, load_mistral_7b

__all__ = ["load_llama3_8b", "load_mistral_7b"]
