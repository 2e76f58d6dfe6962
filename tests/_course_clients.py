"""The two nbgrader exchange plugins the course is played with, and their commands.

``ngshare_exchange`` 0.5.3 (from PyPI, unmaintained) and ``ngshare.exchange``
(shipped with ngshare) differ in how they fail (exit statuses, whether
``add_instructor`` needs names); :class:`Client` records that, so that the
scenario asserts the same behaviour of ngshare through either.
:func:`check_client_installed` fails (not skips) the course when the client
is missing, and :func:`client_commands` writes each plugin's own
``ngshare-course-management``, whatever else installed a command of that name.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from importlib import metadata
from pathlib import Path

import pytest

__all__ = [
    'BIN',
    'CLIENTS',
    'NEW_CLIENT',
    'OLD_CLIENT',
    'Client',
    'check_client_installed',
    'client_commands',
]

# The client's commands: beside this interpreter (a venv's bin folder).
BIN = Path(sys.executable).parent
CLIENT_INSTALL = (
    'python3 -m pip install -e ".[test]" && '
    'python3 -m pip install --no-deps ngshare-exchange==0.5.3'
)


@dataclasses.dataclass(frozen=True)
class Client:
    """An nbgrader exchange plugin the course is played with.

    ``module`` has ``configureExchange``; ``course_management`` is the
    ``module:function`` of its ``ngshare-course-management``. What differs
    between the two plugins: ``failure_status``, the exit status of an
    nbgrader command whose exchange step ngshare refused (None: any; the old
    plugin exits 0 after most failures), ``management_failure_status``
    (that of ``ngshare-course-management``), and whether ``add_instructor``
    needs ``-f/-l/-e`` (the old plugin sends no name fields without them).
    """

    name: str
    module: str
    course_management: str
    failure_status: int | None
    management_failure_status: int
    instructor_names_required: bool


#: ngshare_exchange 0.5.3, from PyPI (unmaintained).
OLD_CLIENT = Client(
    'ngshare_exchange',
    'ngshare_exchange',
    'ngshare_exchange.course_management:main',
    failure_status=None,
    management_failure_status=255,
    instructor_names_required=True,
)
#: The plugin shipped with ngshare (ngshare.exchange).
NEW_CLIENT = Client(
    'ngshare.exchange',
    'ngshare.exchange',
    'ngshare.exchange.course_management:main',
    failure_status=1,
    management_failure_status=1,
    instructor_names_required=False,
)
CLIENTS = {client.name: client for client in (OLD_CLIENT, NEW_CLIENT)}


def check_client_installed(client: Client = OLD_CLIENT) -> None:
    """Fail (not skip) unless nbgrader 0.9.x and ngshare-exchange 0.5.3 are here."""
    problems = []
    wanted_versions = [('nbgrader', '0.9.')]
    if client is OLD_CLIENT:
        wanted_versions.append(('ngshare-exchange', '0.5.3'))
    for dist, wanted in wanted_versions:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            problems.append(f'{dist} is not installed')
            continue
        if not (version == wanted or version.startswith(wanted)):
            problems.append(f'{dist} {version} is installed, not {wanted}')
    nbgrader = BIN / 'nbgrader'
    if not os.access(nbgrader, os.X_OK):
        problems.append(f'no {nbgrader}')
    if problems:
        pytest.fail('; '.join(problems) + f': run `{CLIENT_INSTALL}`', pytrace=False)


def client_commands(folder: Path, client: Client = OLD_CLIENT) -> Path:
    """ngshare_exchange's own console scripts, written into ``folder``.

    The same wrapper pip writes into BIN (``from MODULE import main``) from
    the entry points the installed ngshare-exchange declares. The course
    runs these, first on PATH, rather than BIN's ``ngshare-course-management``,
    which another installed package may have replaced with a command of
    its own (the last one installed wins the name); that is reported as a
    warning.
    """
    folder.mkdir(parents=True)
    if client is not OLD_CLIENT:
        # ngshare.exchange: its command from its module, whatever BIN has
        module, attr = client.course_management.split(':')
        path = folder / 'ngshare-course-management'
        path.write_text(
            f'#!{sys.executable}\n'
            'import sys\n'
            f'from {module} import {attr}\n'
            f'sys.exit({attr}())\n'
        )
        path.chmod(0o755)
        return folder
    scripts = [
        ep
        for ep in metadata.distribution('ngshare-exchange').entry_points
        if ep.group == 'console_scripts'
    ]
    assert scripts, 'ngshare-exchange declares no console script'
    for ep in scripts:
        path = folder / ep.name
        path.write_text(
            f'#!{sys.executable}\n'
            'import sys\n'
            f'from {ep.module} import {ep.attr}\n'
            f'sys.exit({ep.attr}())\n'
        )
        path.chmod(0o755)
        installed = BIN / ep.name
        text = installed.read_text('utf-8', 'replace') if installed.exists() else ''
        if f'from {ep.module} import' not in text:
            warnings.warn(
                f"{installed} is not ngshare_exchange's {ep.name} (another "
                f'package installed a command of that name); the course runs '
                f"ngshare_exchange's own ({ep.value})",
                stacklevel=2,
            )
    return folder
