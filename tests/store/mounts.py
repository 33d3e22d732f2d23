"""Real read-only and full file systems for fault tests, made with mounts.

Tests run as root here, and root ignores file permissions, so ``chmod`` cannot
make a file read-only for them: a read-only bind mount can. A tiny tmpfs is a
disk that really fills up. Both need root and a kernel that lets this process
mount; otherwise the test is skipped and says why. Mounts are always undone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a read-only or full file system")
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"mount is not permitted here: {result.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` (a file or a folder) read-only, even for root, until the block ends."""
    _mount("--bind", str(path), str(path))
    try:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(path)],
                                 capture_output=True, text=True, check=False)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {remount.stderr.strip()}")
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def tiny_disk(folder: Path, size_kib: int) -> Iterator[Path]:
    """A fresh tmpfs of ``size_kib`` KiB mounted on ``folder`` until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder))
    try:
        yield folder
    finally:
        _umount(folder)


def fill(folder: Path) -> Path:
    """Write into ``folder`` until its disk has no room left; returns the filler file."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as file:
        chunk = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                file.write(chunk)
    with open(filler, "ab", buffering=0) as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0")
    return filler
