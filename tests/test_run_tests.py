"""The README's test command: what CI runs, and what it does where it may not.

testing/run-tests is the one command that installs the test components and
runs the suite; .ci/run must run it exactly as the README writes it, and a
component that could not be installed must show up (skip reason locally,
failure on CI), never pass silently.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from _servers import REPO_ROOT

RUN_TESTS = REPO_ROOT / 'testing' / 'run-tests'


def readme_quick_start_commands() -> list[str]:
    """The ``sh`` blocks of the README's "Quick start" section, one line each."""
    readme = (REPO_ROOT / 'README.md').read_text()
    section = readme.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    blocks = re.findall(r'```sh\n(.*?)```', section, flags=re.S)
    return [' '.join(block.replace('\\\n', ' ').split()) for block in blocks]


def test_ci_runs_the_readme_test_command_exactly():
    commands = readme_quick_start_commands()
    test_commands = [c for c in commands if 'testing/run-tests' in c]
    assert len(test_commands) == 1, commands
    (command,) = test_commands
    # From a fresh venv, as the README promises.
    assert command.startswith('python3 -m venv '), command
    ci_lines = [
        line.strip() for line in (REPO_ROOT / '.ci' / 'run').read_text().splitlines()
    ]
    assert command in ci_lines


def test_run_tests_refuses_outside_a_virtual_environment(tmp_path):
    """Outside a venv it would install into the system Python (PEP 668 refuses
    on Debian, elsewhere it installs as root): it stops first, saying how."""
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'LANG': 'C.UTF-8'}
    done = subprocess.run(
        ['bash', str(RUN_TESTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert 'not in a virtual environment' in done.stderr
    assert '. .venv/bin/activate && testing/run-tests' in done.stderr
    assert done.stdout == ''


def run_probe(tmp_path, ci: str | None) -> subprocess.CompletedProcess:
    probe = tmp_path / 'test_probe.py'
    probe.write_text(
        textwrap.dedent(
            """
            from _components import unavailable

            def test_needs_something():
                unavailable('frobnicator missing (apt-get install frob)')
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != 'CI'}
    if ci is not None:
        env['CI'] = ci
    env['PYTHONPATH'] = str(REPO_ROOT / 'tests')
    return subprocess.run(
        [
            sys.executable,
            '-m',
            'pytest',
            '-p',
            'no:cacheprovider',
            '-n',
            '0',
            '-ra',
            '-q',
            str(probe),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_component_is_a_skip_with_its_reason_for_a_developer(tmp_path):
    done = run_probe(tmp_path, ci=None)
    assert done.returncode == 0, done.stdout
    assert 'SKIPPED' in done.stdout
    assert 'frobnicator missing (apt-get install frob)' in done.stdout


def test_a_missing_component_fails_a_ci_run(tmp_path):
    done = run_probe(tmp_path, ci='true')
    assert done.returncode == 1, done.stdout
    assert 'frobnicator missing (apt-get install frob) (required on CI)' in done.stdout
    assert 'SKIPPED' not in done.stdout
