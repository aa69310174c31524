"""Clear errors for the original Mini LLM docs' imports that name packages minillm must not ship.

``from tokenizers.bpe_tokenizer import BPETokenizer`` would otherwise fail inside Hugging Face's ``tokenizers``
("No module named 'tokenizers.bpe_tokenizer'") and ``from models.encoder_model import ...`` with a bare "No module
named 'models'". :func:`install` appends a finder to ``sys.meta_path`` that answers only when every other finder
found nothing (a ``models`` package of your own still wins), with one line naming the import to use instead.

Standard library only, so it can run at interpreter start: ``scripts/setup_env.sh`` puts a ``.pth`` line in the
virtual environment that loads this file by path (without importing the ``minillm`` package); ``import minillm``
installs it too.
"""

from __future__ import annotations

import importlib.abc
import sys

# documented module -> the import to write instead (the README's "From the original docs" table)
REPLACEMENTS = {
    "models": "from minillm import EncoderOnlyModel (models.encoder_model), from minillm import DecoderOnlyModel "
              "(models.transformer_model), from rag import SimpleDocumentStore, DocumentProcessor, RAGModel "
              "(models.rag_utils)",
    "models.encoder_model": "from minillm import EncoderOnlyModel",
    "models.transformer_model": "from minillm import DecoderOnlyModel",
    "models.rag_utils": "from rag import SimpleDocumentStore, DocumentProcessor, RAGModel",
    "tokenizers.bpe_tokenizer": "from tokenizers_bpe import BPETokenizer",
    "tokenizers.character_tokenizer": "from tokenizers_bpe import BPETokenizer",
}


class OriginalDocsImports(importlib.abc.MetaPathFinder):
    """Raise a ModuleNotFoundError that names minillm's import for a documented module nothing else provides."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        """Called only after every earlier finder failed; returns None for modules it does not know."""
        replacement = REPLACEMENTS.get(fullname)
        if replacement is None:
            return
        raise ModuleNotFoundError(
            f"No module named {fullname!r}: that is the original Mini LLM docs' module; with minillm write "
            f"{replacement if fullname == 'models' else f'`{replacement}`'} (README, 'From the original docs')", name=fullname)


def install() -> None:
    """Append the finder to ``sys.meta_path`` once."""
    if not any(isinstance(finder, OriginalDocsImports) for finder in sys.meta_path):
        sys.meta_path.append(OriginalDocsImports())
