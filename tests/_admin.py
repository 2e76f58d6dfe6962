"""``ngshare-admin`` run as an administrator would, on a server's data."""

from __future__ import annotations

import subprocess
import sys

__all__ = ['ngshare_admin']


def ngshare_admin(server, *args: str, timeout: float = 120):
    """``ngshare-admin ARGS`` on ``server``'s database and storage folder."""
    return subprocess.run(
        [
            sys.executable,
            '-m',
            'ngshare.admin',
            *args,
            '--database',
            server.database_url,
            '--storage',
            str(server.storage),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
