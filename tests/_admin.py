"""``ngshare-admin`` run as an administrator would, on a server's data
(:func:`ngshare_admin`, a process), or in the test's own process for speed
(the ``admin_main`` fixture, loaded by conftest's ``pytest_plugins``)."""

from __future__ import annotations

import pytest
from _servers import Finished, run_ngshare

from ngshare import admin as admin_module

__all__ = ['admin_main', 'aws_env', 'ngshare_admin']


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


def aws_env(server) -> dict[str, str]:
    """The AWS variables of a server on a bucket (none for a folder)."""
    env = getattr(server.blobs, 'env', {})
    return {key: value for key, value in env.items() if key.startswith('AWS_')}


def ngshare_admin(server, *args: str, timeout: float = 120) -> Finished:
    """``ngshare-admin ARGS`` as a process on ``server``'s database and
    storage (folder or bucket), with the AWS variables the server was
    started with."""
    return run_ngshare(
        [*args, '--database', server.database_url, '--storage', str(server.storage)],
        module='ngshare.admin',
        env=aws_env(server),
        timeout=timeout,
    )
