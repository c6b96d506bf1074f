"""Atomic writes: a failure mid-write leaves the previous file intact and no temp files."""

from __future__ import annotations

import hashlib
import os

import pytest

from cnnspec.errors import WriteError
from cnnspec.fileio import atomic_path, sha256_file, write_atomic


def test_write_atomic_replaces_content(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_atomic(target, "one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["out.txt"]


def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "model.py"
    target.write_text("previous")
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(WriteError, match="No space left") as info:  # a clean error naming the file
        write_atomic(target, "x" * 10_000)
    assert info.value.path == target and info.value.needed == 10_000
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path) == ["model.py"]


def test_atomic_path_cleans_up_after_a_writer_exception(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        assert temp.suffix == ".keras" and temp.parent == tmp_path
        temp.write_bytes(b"partial")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_interrupt_does_not_leave_temp_files(tmp_path):
    target = tmp_path / "a.json"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temp:
        temp.write_text("{")
        raise KeyboardInterrupt
    assert not target.exists() and os.listdir(tmp_path) == []


def test_sha256_file_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000  # over one 1 MiB chunk
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == sha256_file(path)
