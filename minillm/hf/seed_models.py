"""The seed's one-call loaders: ``load_mistral_7b(use_qlora=True)`` and ``load_llama3_8b(use_qlora=True)``.

They return ``(model, tokenizer)`` like :func:`training.load_model_and_tokenizer` on the aliases ``mistral-7b`` /
``llama-3-8b``: the weights must already be on this machine (the Hugging Face cache or ``HF_HOME``); nothing is
downloaded. The tokenizer is wrapped to the project's tokenizer surface (:class:`minillm.hf.tokenizer.HFTokenizer`).
"""

from __future__ import annotations

from typing import Any

from .loading import LoraOptions, load_hf_model, tokenizer_directory


def load_causal_lm_and_tokenizer(name: str, use_qlora: bool = True, device: str | None = None,
                                 **lora_options: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for an alias, hub id or directory; QLoRA by default, as the seed loads them.

    ``lora_options`` are :class:`~minillm.hf.loading.LoraOptions` fields (``lora_r``, ``lora_alpha``,
    ``lora_dropout``, ``target_modules``, ``use_lora``, ``dtype``, ``device_map``).
    """
    from .tokenizer import HFTokenizer

    model = load_hf_model(name, LoraOptions(use_qlora=use_qlora, **lora_options), device=device)
    return model, HFTokenizer.load(tokenizer_directory(name))


def load_mistral_7b(use_qlora: bool = True, **options: Any) -> tuple[Any, Any]:
    """Mistral-7B-v0.1 (``mistral-7b``), 4-bit NF4 under a LoRA adapter on the seven projections by default."""
    return load_causal_lm_and_tokenizer("mistral-7b", use_qlora=use_qlora, **options)


def load_llama3_8b(use_qlora: bool = True, **options: Any) -> tuple[Any, Any]:
    """Meta-Llama-3-8B (``llama-3-8b``), 4-bit NF4 under a LoRA adapter on the seven projections by default."""
    return load_causal_lm_and_tokenizer("llama-3-8b", use_qlora=use_qlora, **options)
