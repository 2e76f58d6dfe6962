"""``ngshare-admin`` run as an administrator would, on a server's data
(:func:`ngshare_admin`, a process), or in the test's own process for speed
(the ``admin_main`` fixture, loaded by conftest's ``pytest_plugins``)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _servers import Finished

from ngshare import admin as admin_module

__all__ = ['admin_main', 'ngshare_admin']


@pytest.fixture
def admin_main(capsys):
    """``ngshare-admin args`` in this process (faster): a Finished."""

    def run(*args: str) -> Finished:
        try:
            admin_module.main(list(args))
        except SystemExit as exit:
            code = exit.code
        else:  # pragma: no cover - main always exits
            code = None
        out, err = capsys.readouterr()
        return Finished(code, out, err)

    return run


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
