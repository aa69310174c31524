"""Tiny models and datasets shared by the training tests and their subprocess workers (no pytest import)."""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset

from minillm import DecoderOnlyModel

VOCAB = 64
SEQ = 16


def tiny_model(seed: int = 0, dropout: float = 0.0) -> DecoderOnlyModel:
    """2-layer decoder, identical for a given seed."""
    torch.manual_seed(seed)
    return DecoderOnlyModel(
        {"model_type": "decoder_only", "vocab_size": VOCAB, "d_model": 32, "num_heads": 2, "num_layers": 2, "max_seq_len": 32,
             "dropout": dropout}
    )


class RandomTokens(Dataset):
    """``n`` rows of random tokens (labels = inputs), fixed by ``seed``."""

    def __init__(self, n: int, seed: int = 0, seq: int = SEQ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (n, seq), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class Pattern(Dataset):
    """Learnable rows: token t+1 = (token t + step) mod VOCAB."""

    def __init__(self, n: int, seed: int = 0, seq: int = SEQ) -> None:
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, VOCAB, (n, 1), generator=g)
        step = torch.randint(1, 4, (n, 1), generator=g)
        self.ids = (start + step * torch.arange(seq)) % VOCAB

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class Unlabelled(Dataset):
    """``data`` with every label of the rows in ``rows`` set to -100 (nothing to learn there)."""

    def __init__(self, data: Dataset, rows: set[int]) -> None:
        self.data, self.rows = data, rows

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = dict(self.data[i])
        if i in self.rows:
            row["labels"] = torch.full_like(row["labels"], -100)
        return row


def loaders(n_train: int = 64, n_val: int = 16, batch_size: int = 8, shuffle: bool = True, data=RandomTokens):
    """(train, val) DataLoaders over fixed data."""
    return (DataLoader(data(n_train, seed=1), batch_size=batch_size, shuffle=shuffle),
            DataLoader(data(n_val, seed=2), batch_size=batch_size))


def trainable(directory) -> dict[str, torch.Tensor]:
    """Trainable weights stored in a checkpoint."""
    return load_file(f"{directory}/trainer_state/trainable.safetensors")


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copy of a model's parameters."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}
