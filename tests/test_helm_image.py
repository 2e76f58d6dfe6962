"""The image the Helm chart runs (Dockerfile, .dockerignore), checked
without Docker.

The Dockerfile's instructions are read and compared with what the chart
runs (user, port, paths, entrypoint); the build context .dockerignore lets
through is copied and a wheel built from it offline, to show the image
would install the whole package.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

if sys.version_info < (3, 10):  # helm-python-sdk needs 3.10
    pytest.skip('helm-python-sdk needs Python 3.10', allow_module_level=True)

from _helm import ROOT
from _helm_releases import (
    ci_releases,
    env_values,
    pod_spec,
)

from ngshare.version import __version__


@pytest.fixture(scope='module')
def releases():
    """The ci/ values files, rendered once for the module."""
    return ci_releases()


# --- The image ------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / 'Dockerfile').read_text()
    text = re.sub(r'\\\n', ' ', text)
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            keyword, _, rest = line.partition(' ')
            instructions.append((keyword.upper(), ' '.join(rest.split())))
    return instructions


def test_dockerfile_builds_the_service_as_a_non_root_user():
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    assert instructions[0] == ('FROM', 'python:3.11-slim')
    assert keywords.count('FROM') == 1

    runs = [arg for k, arg in instructions if k == 'RUN']
    install = next(arg for arg in runs if 'pip install' in arg)
    # PostgreSQL (psycopg 3) and object storage (boto3): the chart's modes.
    assert re.search(r'pip install "/usr/src/ngshare\[postgres,s3\]"', install)
    assert 'useradd --system --uid 1000 --gid 1000' in ' '.join(runs)
    assert 'install -d -o 1000 -g 1000' in ' '.join(runs)
    assert '/srv/ngshare' in ' '.join(runs)

    users = [arg for k, arg in instructions if k == 'USER']
    assert users == ['1000:1000']  # numeric, so that runAsNonRoot can check it
    assert keywords.index('USER') > max(i for i, k in enumerate(keywords) if k == 'RUN')
    assert ('EXPOSE', '8080') in instructions
    env = ' '.join(arg for k, arg in instructions if k == 'ENV')
    assert 'JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8080' in env
    (entrypoint,) = [arg for k, arg in instructions if k == 'ENTRYPOINT']
    assert json.loads(entrypoint) == ['python', '-m', 'ngshare']
    assert 'CMD' not in keywords


def test_dockerfile_matches_the_chart(releases):
    """The chart runs what the image offers: user 1000, port 8080,
    /srv/ngshare, the entrypoint's arguments."""
    pod = pod_spec(releases['default'])
    assert pod['securityContext']['runAsUser'] == 1000
    assert pod['securityContext']['runAsGroup'] == 1000
    assert pod['securityContext']['fsGroup'] == 1000
    container = releases['default'].container
    assert 'command' not in container
    assert container['ports'][0]['containerPort'] == 8080
    env = env_values(container)
    assert env['JUPYTERHUB_SERVICE_URL'] == 'http://0.0.0.0:8080'


def test_entrypoint_module_runs():
    result = subprocess.run(
        [sys.executable, '-m', 'ngshare', '--version'],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == __version__


def dockerignore_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match, plus **), anchored at the
    context root."""
    out, i = '', 0
    while i < len(pattern):
        if pattern.startswith('**/', i):
            out, i = out + '(?:.*/)?', i + 3
        elif pattern.startswith('**', i):
            out, i = out + '.*', i + 2
        elif pattern[i] == '*':
            out, i = out + '[^/]*', i + 1
        elif pattern[i] == '?':
            out, i = out + '[^/]', i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def docker_context_files() -> list[Path]:
    """The files .dockerignore lets into the build context: the last
    matching rule decides; a rule matching a folder matches its content."""
    rules = []
    for line in (ROOT / '.dockerignore').read_text().splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            negate = line.startswith('!')
            rules.append((negate, dockerignore_regex(line.lstrip('!').strip('/'))))

    def included(relative: str) -> bool:
        parts = relative.split('/')
        prefixes = ['/'.join(parts[: i + 1]) for i in range(len(parts))]
        keep = True
        for negate, regex in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                keep = negate
        return keep

    def may_hold_included(top: str) -> bool:
        # A folder is walked if it is included or a negation may reach in.
        return included(top) or any(
            negate and regex.pattern.startswith(re.escape(top) + '/')
            for negate, regex in rules
        )

    files = []
    for top in ROOT.iterdir():
        if top.name == '.git' or not may_hold_included(top.name):
            continue
        for path in [top] if top.is_file() else top.rglob('*'):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and included(relative):
                files.append(path)
    return files


def test_image_context_builds_an_installable_package(tmp_path):
    """Copy what the Dockerfile copies (through .dockerignore) and build the
    wheel from it, offline: the package, its templates and migrations are
    all there."""
    context = {p.relative_to(ROOT).as_posix() for p in docker_context_files()}
    assert 'pyproject.toml' in context and 'README.md' in context
    assert 'ngshare/__main__.py' in context
    assert not any(
        p.startswith(('tests/', 'node_modules/', 'helmchart/')) for p in context
    )
    assert not any('__pycache__' in p for p in context)
    source = tmp_path / 'src'
    for relative in context:
        if relative in ('pyproject.toml', 'README.md') or relative.startswith(
            'ngshare/'
        ):
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, source / relative)
    subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'wheel',
            '--no-deps',
            '--no-build-isolation',
            '--no-index',
            '--quiet',
            '--wheel-dir',
            str(tmp_path / 'wheels'),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / 'wheels').glob('ngshare-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    assert f'ngshare-{__version__}.dist-info/METADATA' in names
    assert 'ngshare/__main__.py' in names
    assert any(n.startswith('ngshare/alembic/versions/') for n in names)
    assert any(n.startswith('ngshare/templates/') for n in names)
    metadata = zipfile.ZipFile(wheel).read(f'ngshare-{__version__}.dist-info/METADATA')
    assert b'Provides-Extra: postgres' in metadata
    # The extra the Dockerfile installs for object storage brings boto3.
    assert b'Provides-Extra: s3' in metadata
    assert re.search(rb'Requires-Dist: boto3[^\n]*; extra == "s3"', metadata)
