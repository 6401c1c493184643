"""A small file is read whole and bounded, also when it grows while being read.

``read_limited`` reads as many bytes as the file's stat says plus one; a file that a writer
appends to between that stat and the read must still come whole (up to the limit), and one
that grows past the limit must still be refused. The append happens for real, on the file,
right after the stat that ``read_limited`` takes (its ``os.fstat`` is wrapped to do so: a
writer cannot be timed into that gap otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mltop.core.common import regular_files
from mltop.core.common.regular_files import FileTooLarge, read_limited


def _appending_after_stat(monkeypatch: pytest.MonkeyPatch, path: Path, extra: bytes) -> None:
    real = os.fstat

    def fstat_then_append(fd: int) -> os.stat_result:
        st = real(fd)
        with path.open("ab") as fh:
            fh.write(extra)
        monkeypatch.setattr(regular_files.os, "fstat", real)
        return st

    monkeypatch.setattr(regular_files.os, "fstat", fstat_then_append)


def test_a_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_bytes(b'{"a": 1}')
    assert read_limited(path, 100) == b'{"a": 1}'
    assert read_limited(str(path), 8) == b'{"a": 1}'


def test_a_file_grown_after_its_stat_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "meta.json"
    path.write_bytes(b"x" * 10)
    _appending_after_stat(monkeypatch, path, b"y" * 50)
    assert read_limited(path, 100) == b"x" * 10 + b"y" * 50


def test_a_file_grown_past_the_limit_after_its_stat_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "meta.json"
    path.write_bytes(b"x" * 10)
    _appending_after_stat(monkeypatch, path, b"y" * 200)
    with pytest.raises(FileTooLarge, match="over the 100-byte limit"):
        read_limited(path, 100)


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileTooLarge, match="101 bytes, over the 100-byte limit"):
        read_limited(path, 100)
