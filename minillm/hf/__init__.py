"""The bridge to transformers / peft / bitsandbytes: the only code that imports them, lazily, inside functions."""
