"""``deadline.py --compare``: ngshare 0.6.0 and this ngshare in one run.

Speed is judged against 0.6.0 in the same run on the same machine, since
the machine's load changes between runs. Three columns:

* ``A``: ngshare 0.6.0 from its own venv, stand-alone, started through
  ``launch_060.py`` (its test suite's MockAuth: the ``user`` parameter
  names the caller, no Hub is asked), on SQLite and a folder;
* ``B``: this ngshare (``python -m ngshare --vngshare``), driven with the
  form encoding that old clients send;
* ``B'``: a fresh instance of this ngshare, driven with the multipart
  (raw parts) encoding of our own plugin;

each on free loopback ports in a temporary folder (or already running:
``--url-a`` ...), the scenario run ``--rounds`` times, interleaved (round 1
on A, B, B', then round 2, ...) so that a change of load falls on every
column alike, each run on a course of its own.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import io
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import bench_servers
from bench_client import health_url
from bench_report import Comparison, machine, outcome
from bench_scenario import Deadline
from bench_servers import REPO_ROOT, Ngshare, output_of, python_060, start_060
from bench_wire import FORM, MULTIPART

A, B, B2 = 'A', 'B', "B'"
WHAT = {
    A: 'ngshare 0.6.0, form encoding',
    B: 'this ngshare, form encoding',
    B2: 'this ngshare (a fresh instance), multipart encoding',
}
ENCODING = {A: FORM, B: FORM, B2: MULTIPART}


class Running:
    """A server started elsewhere (``--url-a`` ...)."""

    def __init__(self, api: str, pid: int | None):
        self.api, self.pid = api, pid


class Compare:
    def __init__(self, args):
        self.args = args
        self.columns = [A, B] if args.no_multipart else [A, B, B2]
        self.servers: dict[str, object] = {}
        self.runs: dict[str, list[Deadline]] = {c: [] for c in self.columns}
        self.failed: list[str] = []
        self.databases: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix='ngshare-compare-'))
        self.stamp = time.strftime('%Y%m%d-%H%M%S')
        self.load_before = self.load_after = os.getloadavg()
        self.client_cpu = float('nan')

    def given(self, column: str) -> Running | None:
        key = {A: 'a', B: 'b', B2: 'b2'}[column]
        url = getattr(self.args, f'url_{key}')
        return Running(url, getattr(self.args, f'pid_{key}')) if url else None

    def start(self) -> None:
        args, work = self.args, self.workdir
        self.servers[A] = self.given(A) or start_060(args.ngshare_060, work, args.admin)
        ours = [c for c in (B, B2) if c in self.columns and not self.given(c)]
        databases = {c: f'sqlite:///{work / self.slug(c)}.db' for c in ours}
        if args.database_url and ours:
            stem = f'ngshare_bench_{secrets.token_hex(4)}'
            self.databases = [f'{stem}_{self.slug(c)}' for c in ours]
            urls = bench_servers.fresh_databases(args.database_url, self.databases)
            databases = dict(zip(ours, urls))
        for column in (B, B2):
            if column not in self.columns:
                continue
            self.servers[column] = self.given(column) or Ngshare(
                self.slug(column),
                sys.executable,
                work,
                database=databases[column],
                storage=str(work / f'{self.slug(column)}-files'),
                admin=args.admin,
                extra_env={'PYTHONPATH': str(REPO_ROOT)},
            )

    @staticmethod
    def slug(column: str) -> str:
        return {A: '060', B: 'b', B2: 'b-multipart'}[column]

    def run(self) -> None:
        before = os.times()
        for round_ in range(1, self.args.rounds + 1):
            for column in self.columns:
                self.run_one(round_, column)
        after = os.times()
        # The client's own CPU (bodies built included), beside the servers'.
        self.client_cpu = after.user + after.system - before.user - before.system
        self.load_after = os.getloadavg()

    def run_one(self, round_: int, column: str) -> None:
        server = self.servers[column]
        scenario = Deadline(
            self.args,
            url=server.api,
            pid=server.pid,
            # A course per run, also when B and B' share a server.
            course=f'deadline-{self.stamp}-round{round_}-{self.slug(column)}',
            encoding=ENCODING[column],
            health=health_url(server.api),
        )
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            scenario.run()
        self.runs[column].append(scenario)
        took = sum(step.elapsed for step in scenario.steps)
        print(
            f'round {round_} {column:<2}: {scenario.requests_made()} requests,'
            f' {scenario.errors()} errors, count check'
            f' {"passed" if scenario.count_check else "FAILED"}, {took:.1f} s',
            flush=True,
        )
        if not scenario.passed():
            self.failed.append(f'round {round_} on {column}')
            print(output.getvalue(), flush=True)

    def stop(self) -> None:
        bench_servers.stop_all()  # the servers started here, by PID
        if self.databases:
            bench_servers.drop_databases(self.args.database_url, self.databases)
        if self.args.keep:
            print(f'kept {self.workdir}')
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def versions(self) -> list[str]:
        found = [
            'ngshare (this checkout) '
            + output_of(
                [sys.executable, '-m', 'ngshare', '--version'],
                self.workdir,
                {'PYTHONPATH': str(REPO_ROOT)},
            )
        ]
        if not self.given(A):
            code = 'import importlib.metadata as m; print(m.version("ngshare"))'
            python = str(python_060(self.args.ngshare_060))
            found.append(f'ngshare {output_of([python, "-c", code], self.workdir)} (A)')
        for name in ('tornado', 'sqlalchemy', 'requests'):
            with contextlib.suppress(metadata.PackageNotFoundError):
                found.append(f'{name} {metadata.version(name)}')
        return found

    def describe(self) -> str:
        options = self.args
        database = 'PostgreSQL (a fresh database each)' if self.databases else 'SQLite'
        return (
            f'options: --rounds {options.rounds} --students {options.students}'
            f' --concurrency {options.concurrency} --notebook-kb'
            f' {options.notebook_kb} --release-kb {options.release_kb}'
            f' --data-files {options.data_files} --data-kb {options.data_kb}'
            f' --release-mb {options.release_mb} --resubmit-fraction'
            f' {options.resubmit_fraction} --big-file-mb {options.big_file_mb}\n'
            f"databases: A SQLite, B/B' {database}; folders on the local disk\n"
            'benchmark client CPU over all runs (building bodies included):'
            f' {self.client_cpu:.1f} s'
        )


def compare(args) -> int:
    bench = Compare(args)
    try:
        bench.start()
        for column in bench.columns:
            server = bench.servers[column]
            what = WHAT[column].replace(' (a fresh instance)', '')
            what = what if bench.given(column) else WHAT[column]
            print(f'{column:<2} = {what}: {server.api}, pid {server.pid}')
        sys.stdout.flush()
        bench.run()
        print()
        print(Comparison(bench.runs).render())
        print()
        print(machine(bench.load_before, bench.load_after, bench.versions()))
        print(bench.describe())
    except (RuntimeError, OSError) as exc:  # a server that did not start
        print(f'deadline --compare: error: {exc}', file=sys.stderr)
        return 1
    finally:
        bench.stop()
    return outcome(bench.failed)
