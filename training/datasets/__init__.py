"""Dataset builders: a folder of documents -> train/val datasets (chunks, instruction pairs, chat, personas).

``python main.py prepare_dataset [chunks|instructions|chat|personas] --input_dir DOCS --output_dir OUT``; see
:mod:`training.datasets.builders` for the formats and files, :mod:`training.datasets.documents` for the input.
"""

from __future__ import annotations

from .builders import (
    BUILDERS,
    VAL_RATIO,
    BuildConfig,
    BuildResult,
    build_chunks,
    build_keyed,
    check_output_dir,
)
from .chunk_dataset import chunk_spans, chunk_text
from .documents import Document, Section, read_documents
from .personas import STYLES, GenerationSettings, LocalGenerator, OpenAIGenerator, Style, resolve_styles
from .resumable_jsonl import ResumableJsonl, write_records
from .splits import cap_samples, split_documents
from .throughput import Estimate, estimate_training_time
from .trimming import TRIM_MODES, Trimmer, count_tokens

__all__ = [
    "BUILDERS", "STYLES", "TRIM_MODES", "VAL_RATIO", "BuildConfig", "BuildResult", "Document", "Estimate",
    "GenerationSettings", "LocalGenerator", "OpenAIGenerator", "ResumableJsonl", "Section", "Style", "Trimmer",
    "build_chunks", "build_keyed", "cap_samples", "check_output_dir", "chunk_spans", "chunk_text", "count_tokens",
    "estimate_training_time", "read_documents", "resolve_styles", "split_documents", "write_records",
]
