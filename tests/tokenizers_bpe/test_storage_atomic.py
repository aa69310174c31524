"""Tokenizer files are written through a temporary file and a rename: a failed write leaves the old file."""

from __future__ import annotations

import os

import pytest

from tokenizers_bpe import storage


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    storage.write_files(tmp_path, {"version": "old"}, {"role": "old"})
    old = (tmp_path / storage.TOKENIZER_FILE).read_text(encoding="utf-8")

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        storage.write_files(tmp_path, {"version": "new"}, {"role": "new"})
    assert (tmp_path / storage.TOKENIZER_FILE).read_text(encoding="utf-8") == old
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([storage.CONFIG_FILE, storage.TOKENIZER_FILE])


def test_written_files_have_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        file = storage.write_files(tmp_path / "tok.json", {"version": "1"}, {})
    finally:
        os.umask(mask)
    assert file.stat().st_mode & 0o777 == 0o644
