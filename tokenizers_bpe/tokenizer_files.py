"""Saving and loading a BPETokenizer: ``tokenizer.json`` (HF's format) plus its config (roles, chat template).
A mixin of :class:`tokenizers_bpe.tokenizer.BPETokenizer`; the file layout is :mod:`tokenizers_bpe.storage`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from .chat_template import CHATML_TEMPLATE
from .errors import TokenizerInputError
from .hf_json import spec_from_json, spec_to_json
from .pretokenize import GPT2_PATTERN
from .roles import roles_from_config
from .storage import read_files, write_files

NOT_TRAINED = (
    "this BPETokenizer is not trained yet (no vocabulary); call train(texts) or BPETokenizer.load(path)"
)


class TokenizerFiles:
    """save / load (and their transformers names, save_pretrained / from_pretrained) for the BPETokenizer."""

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer and its config (roles, chat template); returns the tokenizer file's path.

        A folder gets ``tokenizer.json`` + ``tokenizer_config.json``; a file ``NAME.json`` gets
        ``NAME_config.json`` beside it (:mod:`tokenizers_bpe.storage`), so every role survives either way.
        """
        if self._spec is None:
            raise TokenizerInputError(NOT_TRAINED)
        config: dict[str, object] = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
        config.update(self.roles_config())
        config["chat_template"] = self.chat_template
        return write_files(path, spec_to_json(self._spec), config)

    save_pretrained = save

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load ours or any HF byte-level BPE ``tokenizer.json``, or a folder holding one, with its config.

        Errors name the file: :class:`~tokenizers_bpe.errors.UnsupportedTokenizerError` for a well-formed file
        of another kind (WordPiece, Unigram ...), :class:`~tokenizers_bpe.errors.TokenizerInputError` for a
        broken one.
        """
        stored = read_files(path)
        self = cls.__new__(cls)
        try:
            spec = spec_from_json(stored.data)
            self._install(spec)
        except TokenizerInputError as exc:
            raise type(exc)(f"{stored.file}: {exc}") from None
        except (KeyError, IndexError, TypeError, AttributeError) as exc:  # a structure no check above expected
            raise TokenizerInputError(
                f"{stored.file} is not a valid tokenizer.json ({type(exc).__name__}: {exc})"
            ) from None
        self.special_tokens = [token.content for token in spec.added_tokens if token.special]
        self.target_vocab_size = self.vocab_size
        self.min_frequency = 0
        splits = [step["pattern"] for step in spec.pre_tokenizer if step["type"] == "Split"]
        self.pattern = splits[0] if splits else GPT2_PATTERN
        self.show_progress = True
        self.chat_template = stored.template or CHATML_TEMPLATE
        self._set_roles(roles_from_config(stored.config, self.special_tokens, self._token_to_id))
        return self

    from_pretrained = load
