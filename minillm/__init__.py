"""minillm: hand-written transformers (decoder, encoder, encoder-decoder) speaking transformers' conventions.

``import minillm`` needs only torch; the HF bridge (``minillm.hf``) imports transformers lazily.
"""

from .checkpoint import load_pretrained
from .config import PRESETS, ModelConfig
from .decoder import DecoderOnlyModel
from .encoder import EncoderOnlyModel
from .encoder_decoder import EncoderDecoderModel
from .original_docs_imports import install as _install_original_docs_imports
from .outputs import ModelOutput

_install_original_docs_imports()

__all__ = [
    "PRESETS",
    "DecoderOnlyModel",
    "EncoderDecoderModel",
    "EncoderOnlyModel",
    "ModelConfig",
    "ModelOutput",
    "load_pretrained",
]
