"""Real small file systems for the tests of full and refusing storage."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

__all__ = ['tmpfs']


@contextlib.contextmanager
def tmpfs(where: Path, size: str):
    """A tmpfs of ``size`` at ``where``; skips the test if it cannot mount.

    Mounting needs root with CAP_SYS_ADMIN (CI runs as root); the mount is
    taken away (lazily, so a server still holding a file cannot block it)
    when the block ends.
    """
    where.mkdir(parents=True)
    mount = ['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(where)]
    try:
        subprocess.run(mount, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, 'stderr', b'') or str(error).encode()
        pytest.skip(
            'mounting a tmpfs needs root with CAP_SYS_ADMIN, which this run'
            f' lacks: {detail.decode(errors="replace").strip()}'
        )
    try:
        yield where
    finally:
        subprocess.run(['umount', '-l', str(where)], check=False, timeout=30)
