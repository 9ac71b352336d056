"""Atomic output: write to a temporary name next to the target, then rename over it.

A reader (or a crash) sees the old file or the complete new one, never half of one; on any
exception the temporary file is removed and the target is left as it was. The temporary file
is created with ``os.open(..., 0o666)`` (a directory with ``0o777``), so the kernel applies the
umask as for any normal file (``0o666 & ~umask``): ``tempfile.mkstemp`` would give ``0600``, and
reading the umask means setting it, which races with other threads.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _temp_name(path: Path) -> Path:
    # hidden, and ending in the target's name so writers that look at the suffix see it
    return path.with_name(f".{os.urandom(4).hex()}.{path.name}")


def stale_temps(directory) -> list[Path]:
    """Temporary files in ``directory`` left by writers that were killed before their rename
    (the ``finally`` that removes them never ran)."""
    pattern = re.compile(r"\.[0-9a-f]{8}\..+")
    return [f for f in Path(directory).glob(".*") if pattern.fullmatch(f.name)]


def _claim(path: Path, make) -> Path:
    """A fresh temporary name next to ``path``, created by ``make(tmp)`` (which must fail with
    FileExistsError if the name is taken)."""
    for _ in range(100):
        tmp = _temp_name(path)
        try:
            make(tmp)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for writers that open the file themselves
    (``AnnData.write_h5ad``, ``safetensors.save_file``); renamed to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _claim(path, lambda t: os.close(os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                                 0o666)))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Yield a file open for writing (``mode`` ``"w"`` or ``"wb"``) that replaces ``path``
    when the block ends without an exception."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh


@contextmanager
def atomic_dir(path) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; on success it replaces ``path`` (an
    existing directory is removed first, so that one step is not atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _claim(path, lambda t: t.mkdir(0o777))
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
