"""What the benchmark prints at the end of a side-by-side comparison
(``deadline.py --compare``): its tables and the machine.

The comparison's columns are A (ngshare 0.6.0), B (this ngshare, the form
encoding every old client sends) and B' (this ngshare, the multipart
encoding of our own plugin). Per step: the median wall time of the rounds
and the ratios B/A and B'/A of those medians; latency percentiles over
every round's requests; the server's CPU during the step; for uploads the
bytes on the wire and the CPU per request; the big upload's peak memory;
the /healthz probe's worst latency; the geo-means over the steps that
count (``GEO_MEAN_LEFT_OUT`` says which do not, and why).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import sys
from pathlib import Path

from bench_client import Step, percentile

# One-request bookkeeping, a few milliseconds, that no scenario of issue 15
# is about: their ratios are noise and would swing the geo-mean.
# ``course``: the admin creates the course; ``count check``: one listing
# to check the rush lost nothing; ``big release``: the README of the big
# assignment; ``cleanup``: deleting the course.
GEO_MEAN_LEFT_OUT = ('course', 'count check', 'big release', 'cleanup')
WRITE_STEPS = ('roster', 'release', 'deadline rush', 'feedback release', 'big upload')
PROBED_STEPS = ('deadline rush', 'big upload', 'big download')
# The steps that upload file trees (the encodings differ only there).
UPLOAD_STEPS = ('release', 'deadline rush', 'feedback release', 'big upload')


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = [head, ['---'] * len(head), *rows]
    return '\n'.join('| ' + ' | '.join(line) + ' |' for line in lines)


def ratio(b: float, a: float) -> float:
    return b / a if a and not math.isnan(a) else float('nan')


def geo_mean(values: list[float]) -> float:
    usable = [v for v in values if v > 0 and not math.isnan(v)]
    if not usable:
        return float('nan')
    return math.exp(sum(math.log(v) for v in usable) / len(usable))


def bytes_per_upload(step: Step) -> float:
    return step.body_bytes / max(1, step.uploads)


def cpu_per_request(step: Step) -> float:
    return step.cpu / max(1, len(step.latencies))


def ms(seconds: float | None) -> str:
    return '-' if seconds is None or math.isnan(seconds) else f'{1000 * seconds:.0f}'


class Comparison:
    """The tables of the runs ``runs[column]`` (one scenario per round);
    ``columns[0]`` is the reference (A) of the ratios."""

    def __init__(self, runs: dict[str, list]):
        self.runs = runs
        self.columns = list(runs)
        self.reference = self.columns[0]
        first = next(r for r in runs.values() if r)
        self.names = [step.name for step in first[0].steps]

    def steps(self, column: str, name: str) -> list[Step]:
        return [s for run in self.runs[column] for s in run.steps if s.name == name]

    def median(self, column: str, name: str, value) -> float:
        found = [value(s) for s in self.steps(column, name)]
        return statistics.median(found) if found else float('nan')

    def time(self, column: str, name: str) -> float:
        return self.median(column, name, lambda s: s.elapsed)

    def others(self) -> list[str]:
        return self.columns[1:]

    def times(self) -> str:
        a = self.reference
        head = ['step', 'kind', *(f'{c} s' for c in self.columns)]
        head += [f'{c}/{a}' for c in self.others()]
        head += [f'CPU s {c}' for c in self.columns]
        head += ['client CPU s ' + ' / '.join(self.columns), 'errors']
        rows = []
        for name in self.names:
            kind = 'write' if name in WRITE_STEPS else 'read'
            if name in GEO_MEAN_LEFT_OUT:
                kind = 'bookkeeping'
            t = {c: self.time(c, name) for c in self.columns}
            row = [name, kind, *(f'{t[c]:.2f}' for c in self.columns)]
            row += [f'{ratio(t[c], t[a]):.2f}' for c in self.others()]
            row += [
                f'{self.median(c, name, lambda s: s.cpu):.2f}' for c in self.columns
            ]
            client = [
                self.median(c, name, lambda s: s.client_cpu) for c in self.columns
            ]
            row.append(' / '.join(f'{x:.2f}' for x in client))
            errors = sum(
                len(s.errors) for c in self.columns for s in self.steps(c, name)
            )
            rows.append([*row, str(errors)])
        return table(head, rows)

    def latencies(self) -> str:
        head = ['step', *(f'{c} p50/p90/p99/max ms' for c in self.columns)]
        rows = []
        for name in self.names:
            row = [name]
            for column in self.columns:
                lat = [1000 * x for s in self.steps(column, name) for x in s.latencies]
                cuts = [percentile(lat, f) for f in (0.5, 0.9, 0.99)]
                cuts.append(max(lat, default=float('nan')))
                row.append(' / '.join(f'{x:.0f}' for x in cuts))
            rows.append(row)
        return table(head, rows)

    def uploads(self) -> str:
        """Bytes on the wire and server CPU per upload request."""
        names = [n for n in self.names if n in UPLOAD_STEPS]
        head = ['upload step', *(f'{c} KB/request' for c in self.columns)]
        head += [f'{c} CPU ms/request' for c in self.columns]
        rows = []
        for name in names:
            row = [name]
            size = {c: self.median(c, name, bytes_per_upload) for c in self.columns}
            cpu = {c: self.median(c, name, cpu_per_request) for c in self.columns}
            row += [f'{size[c] / 1000:.1f}' for c in self.columns]
            row += [f'{1000 * cpu[c]:.1f}' for c in self.columns]
            rows.append(row)
        return table(head, rows)

    def memory(self) -> str:
        """The big upload's peak RSS over the RSS before it, per file size."""
        cells = []
        for column in self.columns:
            found = [
                s.peak_increase / s.file_size
                for s in self.steps(column, 'big upload')
                if s.peak_increase is not None and s.file_size
            ]
            cells.append(f'{column} {max(found):.2f}x' if found else f'{column} -')
        return 'big upload, server peak RSS increase / file size (worst round): ' + (
            ', '.join(cells)
        )

    def probe(self) -> str:
        lines = ['/healthz probe every 20 ms, worst latency ms (worst round):']
        for name in PROBED_STEPS:
            steps = {c: self.steps(c, name) for c in self.columns}
            if not any(steps.values()):
                continue
            cells = []
            for column in self.columns:
                worst = [
                    s.probe_worst for s in steps[column] if s.probe_worst is not None
                ]
                cells.append(f'{column} {ms(max(worst)) if worst else "-"}')
            lines.append(f'  {name}: ' + ', '.join(cells))
        return '\n'.join(lines)

    def geo_means(self) -> str:
        a = self.reference
        counted = [n for n in self.names if n not in GEO_MEAN_LEFT_OUT]
        parts = []
        for column in self.others():
            values = [ratio(self.time(column, n), self.time(a, n)) for n in counted]
            parts.append(f'{column}/{a} {geo_mean(values):.3f}')
        return (
            f'geo-mean over {len(counted)} steps ({", ".join(counted)}): '
            + ', '.join(parts)
            + f'\n(left out, one-request bookkeeping: {", ".join(GEO_MEAN_LEFT_OUT)})'
        )

    def render(self) -> str:
        return '\n\n'.join(
            [
                self.times(),
                self.latencies(),
                self.uploads(),
                self.memory() + '\n' + self.probe(),
                self.geo_means(),
            ]
        )


def machine(load_before, load_after, versions: list[str]) -> str:
    model = 'unknown CPU'
    with contextlib.suppress(OSError):
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.partition(':')[2].strip()
                break
    memory = 'RAM unknown'
    with contextlib.suppress(OSError, ValueError, IndexError):
        total = int(Path('/proc/meminfo').read_text().split()[1]) * 1024
        memory = f'{total / 1024**3:.1f} GiB RAM'
    load = ' -> '.join(
        '/'.join(f'{x:.2f}' for x in avg) for avg in (load_before, load_after)
    )
    return (
        f'machine: {model}, {os.cpu_count()} CPUs, {memory}, Python'
        f' {platform.python_version()} ({sys.executable}),'
        f' {platform.system()} {platform.release()}\n'
        f'load average (1/5/15 min) before -> after: {load}\n'
        f'versions: {", ".join(versions)}'
    )


def outcome(failed: list[str]) -> int:
    """Print how the runs ended; the exit status (0: every run clean)."""
    if failed:
        print('FAILED: ' + ', '.join(failed))
        return 1
    print('all runs: no error, count check passed')
    return 0
