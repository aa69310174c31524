"""Persona datasets: the seed's three explanation styles, each with its system prompt, and the generators.

A generator turns chat messages into the assistant's reply. :class:`LocalGenerator` runs any model speaking the
generate protocol (ours, SmolLM2 by default, an HF model) through its tokenizer's chat template;
:class:`OpenAIGenerator` calls any OpenAI-compatible ``/v1/chat/completions`` endpoint with the ``openai`` client
(a local server such as llama.cpp, vLLM or Ollama works offline).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from minillm.errors import InputError, MissingDependencyError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Style:
    """One persona: its name, its system prompt, and how the user turn asks for the explanation."""

    name: str
    system_prompt: str
    request: str


STYLES: dict[str, Style] = {
    "eli5": Style(
        "eli5",
        "You explain research to a curious 10-year-old. Use short sentences and everyday words, no jargon: if a "
        "technical term cannot be avoided, say what it means in plain words. Use one concrete example from daily "
        "life. Stay faithful to the paper: do not invent results. Keep it under 150 words.",
        "Explain this research like I'm five.",
    ),
    "intuitive": Style(
        "intuitive",
        "You build intuition for a smart reader who is new to the field. Start from the core idea, then use one or "
        "two analogies to show why the method works and what its results mean; name the key terms and connect "
        "them to the analogy. Skip formulas and statistics unless they carry the point. Stay faithful to the "
        "paper. Keep it under 200 words.",
        "Help me build an intuition for this research.",
    ),
    "executive": Style(
        "executive",
        "You brief a busy executive. Bottom line first: one sentence on what was found. Then the implications for "
        "decisions, costs or risks, as exactly 3 bullet points. End with one line on how solid the evidence is. "
        "No jargon, no methods detail, no hype. Keep it under 120 words.",
        "Give me the executive summary of this research.",
    ),
}


def resolve_styles(names: list[str] | None) -> list[Style]:
    """The styles named (all three when None), in the order given; InputError naming an unknown one."""
    if not names:
        return list(STYLES.values())
    unknown = [n for n in names if n.lower() not in STYLES]
    if unknown:
        raise InputError(f"--styles {' '.join(unknown)} unknown; choose from {', '.join(STYLES)}")
    return [STYLES[n.lower()] for n in dict.fromkeys(names)]


def persona_messages(style: Style, title: str, source_text: str) -> list[dict[str, str]]:
    """The system and user turns that ask for ``style``'s explanation of one source text."""
    user = f"{style.request}\n\nTitle: {title}\n\n{source_text.strip()}"
    return [{"role": "system", "content": style.system_prompt}, {"role": "user", "content": user}]


class Generator(Protocol):
    """Anything that answers a conversation."""

    def reply(self, messages: list[dict[str, str]]) -> str: ...


@dataclass
class GenerationSettings:
    """How replies are sampled (greedy when ``temperature`` is 0)."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 42


class LocalGenerator:
    """A local model through the generate protocol: chat template -> ``model.generate`` -> the new tokens."""

    END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")

    def __init__(self, model: Any, tokenizer: Any, settings: GenerationSettings | None = None):
        if not callable(getattr(tokenizer, "apply_chat_template", None)):
            raise InputError(f"the tokenizer ({type(tokenizer).__name__}) has no chat template; pass a chat model "
                             "or a tokenizer with one (--tokenizer_path)")
        self.model, self.tokenizer = model, tokenizer
        self.settings = settings or GenerationSettings()
        self.calls = 0

    def _stops(self) -> list[int]:
        stops = [self.tokenizer.eos_token_id]
        lookup = getattr(self.tokenizer, "token_to_id", None)
        if callable(lookup):
            stops += [lookup(token) for token in self.END_OF_TURN]
        return list(dict.fromkeys(int(i) for i in stops if i is not None))

    def reply(self, messages: list[dict[str, str]]) -> str:
        import torch

        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer.encode(prompt, add_special_tokens=False)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([ids], device=device)
        s = self.settings
        sample = s.temperature > 0
        options: dict[str, Any] = {"max_new_tokens": s.max_new_tokens, "do_sample": sample,
                                   "eos_token_id": self._stops() or None}
        if sample:
            options.update(temperature=s.temperature, top_p=s.top_p)
        torch.manual_seed(s.seed + self.calls)  # each reply reproducible for a given seed and order
        self.calls += 1
        with torch.no_grad():
            out = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **options)
        return self.tokenizer.decode(out[0, len(ids):].tolist(), skip_special_tokens=True).strip()


class OpenAIGenerator:
    """Any OpenAI-compatible chat endpoint (``--api_base``), through the ``openai`` client."""

    def __init__(self, api_base: str, api_model: str, api_key: str | None = None,
                 settings: GenerationSettings | None = None, timeout: float = 120.0):
        try:
            from openai import OpenAI
        except ImportError as exc:
            raise MissingDependencyError("--api_base needs the openai package: pip install openai") from exc
        if not api_base.startswith(("http://", "https://")):
            raise InputError(f"--api_base {api_base!r} must be an http(s) URL such as http://127.0.0.1:8000/v1")
        self.client = OpenAI(base_url=api_base, api_key=api_key or "not-needed", timeout=timeout, max_retries=2)
        self.api_model = api_model
        self.settings = settings or GenerationSettings()

    def reply(self, messages: list[dict[str, str]]) -> str:
        """The endpoint's reply ("" when it returned none); a failed request is an InputError naming the URL."""
        import openai

        s = self.settings
        try:
            response = self.client.chat.completions.create(
                model=self.api_model, messages=messages, max_tokens=s.max_new_tokens, temperature=s.temperature,
                top_p=s.top_p, seed=s.seed,
            )
        except openai.APIError as exc:
            message = " ".join(str(exc).split())
            raise InputError(f"--api_base {self.client.base_url}: the request failed ({type(exc).__name__}: "
                             f"{message}); check the URL, --api_model and --api_key") from None
        content = response.choices[0].message.content if response.choices else None
        return (content or "").strip()
