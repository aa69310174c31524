"""Public API carries docstrings and type hints; docstring examples hold."""

from __future__ import annotations

import doctest
import inspect
import typing

import pytest

import minillm.decoding
import minillm.devices
import minillm.layers
from minillm.attention import KVCache
from minillm.config import HF_ALIASES, ModelConfig
from minillm.decoder import DecoderLayer
from minillm.decoding import DecodeStep, fuse_linears, prepare_decoding_weights
from minillm.encoder_decoder import T5Block, T5Stack
from minillm.layers import rotate_half
from minillm.one_row_products import RowBlockMatmul, decode_matmul
from minillm.outputs import ModelOutput

PUBLIC = [ModelConfig.to_dict, ModelConfig.to_json, ModelConfig.from_json, DecoderLayer.forward, T5Block.forward,
          T5Stack.forward, KVCache.advance, rotate_half, ModelOutput.keys, DecodeStep.__call__, RowBlockMatmul.__call__,
          decode_matmul, fuse_linears, prepare_decoding_weights]


@pytest.mark.parametrize("func", PUBLIC, ids=lambda f: f.__qualname__)
def test_public_api_is_documented_and_typed(func):
    assert inspect.getdoc(func), f"{func.__qualname__} has no docstring"
    hints = typing.get_type_hints(func)
    params = [p for p in inspect.signature(func).parameters if p not in ("self", "cls")]
    assert set(params) <= set(hints) and "return" in hints, f"{func.__qualname__} lacks type hints"


def test_no_identity_aliases():
    assert all(key != value for key, value in HF_ALIASES.items())


@pytest.mark.parametrize("module", [minillm.layers, minillm.devices, minillm.decoding])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
