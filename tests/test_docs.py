"""The documentation matches the code: every command-line flag of ``--help``
is documented in ``docs/cli.md`` and every flag there exists; every route of
``API_ROUTES`` is in ``docs/api.md``; and the Sphinx site builds without a
warning.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest
from _servers import REPO_ROOT, run_ngshare

from ngshare.app import API_ROUTES

DOCS = REPO_ROOT / 'docs'
FLAG = re.compile(r'(?<![\w-])(--[a-z][a-z0-9_-]*[a-z0-9]|-h)(?![\w-])')
ADMIN_COMMANDS = [
    ('gc',),
    ('verify',),
    ('upgrade',),
    ('deleted', 'list'),
    ('deleted', 'restore'),
    ('deleted', 'purge'),
]


def help_flags(module: str, *args: str) -> set[str]:
    """The flags a ``--help`` prints (its usage lines and option list)."""
    done = run_ngshare([*args, '--help'], module=module)
    assert done.returncode == 0, done.output
    assert 'usage:' in done.stdout
    # The usage block names every flag; the option list repeats them with
    # help texts, which may mention other flags ("with --vngshare ..."), so
    # only the option names at the start of its lines count.
    usage, _, options = done.stdout.partition('\n\n')
    flags = set(FLAG.findall(usage))
    for line in options.splitlines():
        stripped = line.strip()
        if stripped.startswith('-'):
            flags |= set(FLAG.findall(re.split(r'\s{2,}', stripped)[0]))
    return flags


def sections(markdown: str, level: str) -> dict[str, str]:
    """``{heading: text up to the next heading of that level or higher}``."""
    result = {}
    pattern = re.compile(rf'^{level} (.+)$', re.MULTILINE)
    matches = list(pattern.finditer(markdown))
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(markdown)
        text = markdown[match.end() : end]
        higher = re.search(rf'^#{{1,{len(level) - 1}}} ', text, re.MULTILINE)
        if higher:
            text = text[: higher.start()]
        result[match.group(1).replace('`', '').strip()] = text
    return result


def doc_flags(text: str) -> set[str]:
    return set(FLAG.findall(text))


@pytest.fixture(scope='module')
def cli_md() -> str:
    return (DOCS / 'cli.md').read_text(encoding='utf-8')


@pytest.fixture(scope='module')
def all_help_flags() -> set[str]:
    flags = help_flags('ngshare') | help_flags('ngshare.admin')
    for command in ADMIN_COMMANDS:
        flags |= help_flags('ngshare.admin', *command)
    flags |= help_flags('ngshare.admin', 'deleted')
    return flags


def test_help_parser_sees_the_flags():
    """The parser above is not vacuous."""
    flags = help_flags('ngshare')
    assert {'--database', '--admins', '--no-upgrade-db', '--max-body-size'} <= flags
    assert {'--jupyterhub_api_url', '--version', '-h', '--help'} <= flags
    assert help_flags('ngshare.admin', 'gc') >= {'--delete', '--grace-seconds'}


def test_every_service_flag_is_documented(cli_md):
    service = sections(cli_md, '##')['ngshare (python3 -m ngshare)']
    missing = help_flags('ngshare') - doc_flags(service)
    assert not missing, f'flags of python -m ngshare missing in docs/cli.md: {missing}'


def test_every_admin_flag_is_documented(cli_md):
    admin = sections(cli_md, '##')['ngshare-admin']
    commands = sections(admin, '###')
    missing = help_flags('ngshare.admin') - doc_flags(admin)
    assert not missing, f'ngshare-admin flags missing in docs/cli.md: {missing}'
    for command in ADMIN_COMMANDS:
        title = 'ngshare-admin ' + ' '.join(command)
        assert title in commands, f'docs/cli.md has no section "### `{title}`"'
        expected = help_flags('ngshare.admin', *command) - {'-h', '--help'}
        missing = expected - doc_flags(commands[title])
        assert not missing, f'{title}: flags missing in docs/cli.md: {missing}'


def test_every_documented_flag_exists(cli_md, all_help_flags):
    unknown = doc_flags(cli_md) - all_help_flags
    assert not unknown, f'docs/cli.md documents flags --help does not know: {unknown}'


def test_every_route_is_in_the_api_reference():
    api_md = (DOCS / 'api.md').read_text(encoding='utf-8')
    documented = set(re.findall(r'/api/([^\s`?)]+)', api_md))
    for pattern, _handler in API_ROUTES:
        # "submission/([^/]+)/([^/]+)" -> "submission/<x>/<y>", compared by
        # the fixed words and the number of segments.
        shape = re.sub(r'\\(.)', r'\1', re.sub(r'\([^)]*\)', '<>', pattern))
        wanted = re.compile('^' + re.escape(shape).replace('<>', '<[a-z_]+>') + '/?$')
        assert any(wanted.match(path) for path in documented), (
            f'docs/api.md does not document the route {shape!r}'
        )


@pytest.mark.skipif(
    importlib.util.find_spec('sphinx') is None
    or importlib.util.find_spec('myst_parser') is None,
    reason='Sphinx and myst-parser are not installed (pip install -e ".[docs]"; '
    '.ci/run installs them)',
)
def test_sphinx_build_has_no_warnings(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            '-m',
            'sphinx',
            '-W',
            '--keep-going',
            '-q',
            '-b',
            'html',
            '-d',
            str(tmp_path / 'doctrees'),
            str(DOCS),
            str(tmp_path / 'html'),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for page in ('index', 'cli', 'api', 'admin-notes', 'behaviour', 'architecture'):
        assert (tmp_path / 'html' / f'{page}.html').is_file(), page
