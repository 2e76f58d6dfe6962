"""benchmarks/deadline.py runs: a tiny course against a stand-alone server.

The benchmark itself is run by hand (see ``benchmarks/README.md``); this
only makes sure it still works with the server: every step succeeds, the
count check passes, and it reports the server's memory when given its pid.
"""

from __future__ import annotations

import re
import subprocess
import sys

from _servers import REPO_ROOT

BENCHMARK = REPO_ROOT / 'benchmarks' / 'deadline.py'
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
