"""ngshare 0.6.0's own test suite, run black-box over HTTP against this server.

Scripts written against 0.6.0 expect what its test suite checks (its sample
data, debug mode's verbose refusals, its messages). The suite ships inside
the ngshare 0.6.0 wheel (``ngshare/test_ngshare.py``); it is never copied
into this repository. It runs in its own venv (``$NGSHARE_060_VENV``,
default ``<repo>/.venv-ngshare-0.6.0``, made by ``testing/run-tests`` with
``ngshare==0.6.0 "SQLAlchemy<2" pytest pytest-tornado``), by that venv's
pytest as ``--pyargs ngshare.test_ngshare``, so that its ``from .ngshare
import ...`` finds the installed 0.6.0 package. The plugin
``original_suite/ngshare060_against_server.py`` points its ``base_url`` at
our server (a real ``python -m ngshare --vngshare --debug`` process) and
gives pytest-tornado's own in-process server an application without routes.

The verdict is exact: every test of :data:`PASSING` passes, every test of
:data:`DIFFERENCES` fails where its reason says (the deliberate
differences, listed with the same reasons in docs/behaviour.md
"Differences from ngshare 0.6.0"), and the tests of :data:`IN_PROCESS`
(which patch or call 0.6.0's code inside the test process) are deselected.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _components import unavailable
from _servers import REPO_ROOT

pytestmark = pytest.mark.both_databases

VENV = Path(os.environ.get('NGSHARE_060_VENV') or REPO_ROOT / '.venv-ngshare-0.6.0')
PLUGIN_DIR = Path(__file__).resolve().parent / 'original_suite'
PLUGIN = 'ngshare060_against_server'
SUITE_TIMEOUT = 600

# Black-box tests that pass against this server.
PASSING = (
    'test_health',
    'test_list_courses',
    'test_add_course',
    'test_list_instructors',
    'test_get_student',
    'test_delete_student',
    'test_add_students',
    'test_list_students',
    'test_list_assignments',
    'test_download_assignment',
    'test_release_assignment',
    'test_delete_assignment',
    'test_list_submissions',
    'test_list_student_submission',
    'test_submit_assignment',
    'test_download_submission',
    'test_upload_feedback',
    'test_download_feedback',
)

# test name -> (reason, a line of the failure report that shows it fails
# for that reason and no other).
DIFFERENCES = {
    'test_home': (
        'The welcome page runs no script and loads nothing from elsewhere'
        ' (no masonry.min.js), its favicon is SVG, and an unknown path under'
        ' the prefix answers a JSON 404, not an HTML page.',
        "startswith('<!doctype html>')",
    ),
    'test_init': (
        'The human-readable dump is a plain HTML table without a script'
        ' (no masonry.min.js).',
        "assert 'masonry.min.js' in response.body.decode()",
    ),
    'test_add_instructor': (
        'POST /instructor without email answers the documented 400'
        ' "Please supply email name" (0.6.0 answered "Please supply email").',
        "'Please supply email name' == 'Please supply email'",
    ),
    'test_get_instructor': (
        'Follows from test_add_instructor stopping early: lawrence was never'
        ' made an instructor of course2.',
        "resp1 = yield from assert_success(url + 'course2/lawrence')",
    ),
    'test_delete_instructor': (
        'Follows from test_add_instructor stopping early: lawrence is no'
        ' instructor of course2 to remove.',
        "yield from assert_success(url + 'course2/lawrence', method='DELETE')",
    ),
    'test_add_student': (
        'Follows from test_add_instructor stopping early: lawrence is no'
        ' instructor of course1, so adding him as a student succeeds.',
        "msg='Cannot add instructor as student',",
    ),
    'test_remove_course': (
        'The dump lists every table of our schema (empty ones as []), and a'
        ' deleted course stays restorable in deleted_items for a while.',
        "assert set(resp.keys()) == {'success', 'users'}",
    ),
}

# Tests that need 0.6.0's code in the test process: deselected.
IN_PROCESS = {
    'test_corner_case': 'patches MyHelpers.filename_create in the test'
    ' process to force a file-name conflict (our blob names are content'
    ' hashes: no conflict is possible)',
    'test_nodebug': "switches the in-process application's debug mode off",
    'test_api_prefix': "calls 0.6.0's main() in the test process",
    'test_notimpl': "calls 0.6.0's MyHelpers and MockAuth directly",
    'test_clean': "removes the in-process application's temporary files",
}


def _venv_python() -> Path:
    python = VENV / 'bin' / 'python'
    if not python.exists():
        unavailable(
            f'no ngshare 0.6.0 venv at {VENV}: testing/run-tests creates it'
            ' (or set NGSHARE_060_VENV to one with ngshare==0.6.0'
            ' "SQLAlchemy<2" pytest pytest-tornado)'
        )
    return python


def _outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """test name -> (outcome, failure text) from a junit-xml report."""
    outcomes = {}
    for case in ET.parse(report).getroot().iter('testcase'):
        outcome, text = 'passed', ''
        for child in case:
            if child.tag in ('failure', 'error', 'skipped'):
                outcome = child.tag
                text = (child.get('message') or '') + '\n' + (child.text or '')
        outcomes[case.get('name')] = (outcome, text)
    return outcomes


def run_original_suite(python: Path, server, workdir: Path) -> dict:
    """Run 0.6.0's suite against ``server``; its outcomes by test name."""
    workdir.mkdir()
    # Our own pytest settings (xdist, asyncio) must not apply to that run.
    (workdir / 'pytest.ini').write_text('[pytest]\n')
    report = workdir / 'report.xml'
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(('PYTEST_', 'PYTHON', 'VIRTUAL_ENV'))
    }
    env.update(
        PYTHONPATH=str(PLUGIN_DIR),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD='1',
        NGSHARE_UNDER_TEST=server.base,
    )
    command = [
        str(python),
        '-m',
        'pytest',
        '-c',
        str(workdir / 'pytest.ini'),
        '--rootdir',
        str(workdir),
        '-p',
        'no:cacheprovider',
        '-p',
        'pytest_tornado.plugin',
        '-p',
        PLUGIN,
        '--app-fixture',
        'empty_app',
        '-W',
        'ignore',
        '-k',
        'not (' + ' or '.join(IN_PROCESS) + ')',
        f'--junitxml={report}',
        '--pyargs',
        'ngshare.test_ngshare',
    ]
    done = subprocess.run(
        command,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
        check=False,
    )
    assert report.exists(), f'no report from {command}:\n{done.stdout}\n{done.stderr}'
    return _outcomes(report)


def test_original_suite_passes_but_for_listed_differences(
    start_ngshare, ngshare_database_url, tmp_path
):
    python = _venv_python()
    server = start_ngshare(
        hub_mode=False, args=['--debug'], database_url=ngshare_database_url
    )
    outcomes = run_original_suite(python, server, tmp_path / 'original-suite')

    assert not set(IN_PROCESS) & set(outcomes), 'in-process tests were run'
    assert set(outcomes) == set(PASSING) | set(DIFFERENCES), sorted(outcomes)
    failed_unexpectedly = {
        name: text
        for name, (outcome, text) in outcomes.items()
        if name in PASSING and outcome != 'passed'
    }
    assert not failed_unexpectedly, '\n\n'.join(
        f'{name}:\n{text}' for name, text in failed_unexpectedly.items()
    )
    for name, (reason, shown_by) in DIFFERENCES.items():
        outcome, text = outcomes[name]
        assert outcome == 'failure', f'{name} now {outcome}: drop it from DIFFERENCES'
        assert shown_by in text, f'{name} fails otherwise than by: {reason}\n{text}'
    # The requests reached our server (and not pytest-tornado's own).
    log = server.log_path.read_text()
    assert 'initialize-Data6ase?action=init' in log
    assert 'POST /api/students/course1' in log
