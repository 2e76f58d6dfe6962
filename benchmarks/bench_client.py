"""Talking to a server under test and measuring it: steps, the HTTP client,
the server process's CPU and memory, and the ``/healthz`` probe.

The client stays lean so that the figures are the server's: bodies and
whole requests come prebuilt (``bench_wire.py``, ``bench_http.py``), sent on
kept-alive sockets with the standard library only, answers are parsed with
``json.loads`` straight from the bytes (or compared as bytes), and the
server's own CPU is read from ``/proc/PID/stat`` around every step rather
than inferred from wall time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import threading
import time
import urllib.parse
from pathlib import Path

from bench_http import Endpoint, Prepared, fetch
from bench_wire import Body

MIB = 1024 * 1024
TIMEOUT = 600


class Step:
    """Requests of one step: latencies, errors, wall-clock time, bytes sent,
    and (with the server's pid) its CPU time and memory."""

    def __init__(self, name: str):
        self.name = name
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.started = time.perf_counter()
        self.elapsed = 0.0
        self.body_bytes = 0
        self.uploads = 0
        self.cpu_before = float('nan')
        self.cpu = float('nan')  # server CPU seconds during the step
        self.rss_before = None
        self.client_cpu = 0.0  # this process's CPU seconds during the step
        self.file_size = 0  # of the big file, for the memory multiple
        self.memory = ''
        self.peak_increase = None  # bytes over the RSS before the step
        self.probe_worst = None  # seconds, the /healthz probe's worst latency
        self.note = ''

    def record(self, latency: float, error: str | None = None) -> None:
        with self.lock:
            self.latencies.append(latency)
            if error:
                self.errors.append(error)

    def sent(self, length: int) -> None:
        with self.lock:
            self.body_bytes += length
            self.uploads += 1

    def fail(self, error: str) -> None:
        """A check that failed without a request of its own."""
        with self.lock:
            self.errors.append(error)

    def finish(self) -> None:
        self.elapsed = time.perf_counter() - self.started


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float('nan')
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def step_header() -> str:
    return (
        f'{"step":<18} {"requests":>8} {"errors":>6} {"req/s":>8} '
        f'{"p50 ms":>8} {"p90 ms":>8} {"p99 ms":>8} {"max ms":>8} '
        f'{"cpu s":>6} {"client":>6}  server memory'
    )


def step_line(step: Step) -> str:
    lat = [1000 * x for x in step.latencies]
    rate = len(lat) / step.elapsed if step.elapsed else float('nan')
    text = (
        f'{step.name:<18} {len(lat):>8} {len(step.errors):>6} {rate:>8.1f} '
        f'{percentile(lat, 0.5):>8.1f} {percentile(lat, 0.9):>8.1f} '
        f'{percentile(lat, 0.99):>8.1f} {max(lat, default=float("nan")):>8.1f}'
        f' {step.cpu:>6.2f} {step.client_cpu:>6.2f}  {step.memory}'
    )
    if step.probe_worst is not None:
        text += f'  /healthz worst {1000 * step.probe_worst:.0f} ms'
    if step.note:
        text += f'  [{step.note}]'
    return text


class ServerProcess:
    """The server's CPU time (``/proc/PID/stat``) and memory (``VmRSS``,
    ``VmHWM`` of ``/proc/PID/status``); all ``nan``/empty without a pid."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.resettable = pid is not None and self.reset_peak()

    def cpu_seconds(self) -> float:
        """utime + stime of the process so far."""
        if self.pid is None:
            return float('nan')
        try:
            stat = Path(f'/proc/{self.pid}/stat').read_text()
        except OSError:
            return float('nan')
        fields = stat.rpartition(')')[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def status(self) -> dict[str, int]:
        result = {}
        if self.pid is None:
            return result
        with open(f'/proc/{self.pid}/status') as status:
            for line in status:
                key, _, value = line.partition(':')
                if key in ('VmRSS', 'VmHWM'):
                    result[key] = int(value.split()[0]) * 1024
        return result

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0, own processes)."""
        try:
            with open(f'/proc/{self.pid}/clear_refs', 'w') as clear:
                clear.write('5')
            return True
        except OSError:
            return False

    def describe(self) -> str:
        if self.pid is None:
            return ''
        status = self.status()
        peak = 'peak' if self.resettable else 'peak so far'
        return (
            f'RSS {status["VmRSS"] / MIB:.0f} MiB, '
            f'{peak} {status["VmHWM"] / MIB:.0f} MiB'
        )


class Client:
    """The API under ``url``: requests prebuilt (``request``) before a step's
    clock starts, sent by ``call`` on a kept-alive connection per thread
    (``bench_http.py``: the bytes ``requests`` sends, at a twentieth of its
    CPU)."""

    def __init__(self, url: str):
        self.endpoint = Endpoint(url)
        # The Ngshare-Upload-Formats header of the latest answer (docs/api.md)
        self.upload_formats = None

    def request(
        self,
        method: str,
        segments: tuple[str, ...],
        user: str,
        *,
        params: dict | None = None,
        body: Body | None = None,
    ) -> Prepared:
        """A GET names the caller in the query (after ``params``); any other
        request's ``body`` (prebuilt, with ``user`` in it) does."""
        label = f'{method} {"/".join(segments)} as {user}'
        if method == 'GET' or body is None:
            target = self.endpoint.target(segments, {**(params or {}), 'user': user})
            return self.endpoint.prepare(method, target, label=label)
        return self.endpoint.prepare(
            method,
            self.endpoint.target(segments),
            body=body.data,
            length=len(body),
            content_type=body.content_type,
            label=label,
        )

    def call(self, step: Step, request: Prepared, *, raw: bool = False):
        """Send one prebuilt request; its latency and any error go to
        ``step``. Returns the JSON answer of a success, else None; with
        ``raw``, the bytes of any 200 answer, unparsed (the caller checks
        them)."""
        if request.body is not None:
            step.sent(request.length)
        started = time.perf_counter()
        error = None
        answer = None
        try:
            head, content = fetch(self.endpoint, request)
            self.upload_formats = head.headers.get('ngshare-upload-formats')
            if raw and head.status == 200:
                step.record(time.perf_counter() - started)
                return content
            try:
                answer = json.loads(content)
            except ValueError:
                answer = None
            if head.status != 200 or not (answer or {}).get('success'):
                error = f'{request.label}: {head.status} '
                error += str((answer or {}).get('message', bytes(content[:200])))
                answer = None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = f'{request.label}: {type(exc).__name__} {exc}'
        step.record(time.perf_counter() - started, error)
        return answer


class HealthProbe:
    """A thread that GETs ``url`` every ``interval`` seconds on a kept-alive
    connection of its own, while a step runs; its worst latency and errors
    go to the step."""

    def __init__(self, url: str, interval: float = 0.02):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path or '/'
        self.interval = interval
        self.worst = 0.0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=TIMEOUT)

    def _run(self) -> None:
        connection = None
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=30
                )
            started = time.perf_counter()
            try:
                connection.request('GET', self.path)
                resp = connection.getresponse()
                resp.read()
                if resp.status != 200:
                    self.errors.append(f'GET {self.path}: {resp.status}')
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f'GET {self.path}: {exc}')
                connection.close()
                connection = None
            self.worst = max(self.worst, time.perf_counter() - started)
            self._stop.wait(self.interval)
        if connection is not None:
            connection.close()


def health_url(api_url: str) -> str:
    """``/healthz`` at the root of the API's server (ours and 0.6.0 both
    answer it there: the cheapest GET either has)."""
    parts = urllib.parse.urlsplit(api_url)
    return f'{parts.scheme}://{parts.netloc}/healthz'


class StepRunner:
    """Runs the steps of a scenario: each step's clock, the server's CPU and
    memory around it, the probe during it, its requests on a thread pool."""

    def __init__(self, server: ServerProcess, health: str | None, concurrency: int):
        self.server = server
        self.health = health
        self.pool = concurrent.futures.ThreadPoolExecutor(concurrency)
        self.steps: list[Step] = []

    def step(self, name: str) -> Step:
        """Start a step's clock (its bodies are built by now)."""
        if self.server.resettable:
            self.server.reset_peak()
        step = Step(name)
        step.rss_before = self.server.status().get('VmRSS')
        step.cpu_before = self.server.cpu_seconds()
        self.steps.append(step)
        step.client_cpu = time.process_time()
        step.started = time.perf_counter()
        return step

    def end(self, step: Step) -> None:
        step.finish()
        step.client_cpu = time.process_time() - step.client_cpu
        step.cpu = self.server.cpu_seconds() - step.cpu_before
        status = self.server.status()
        if status and step.rss_before is not None:
            step.peak_increase = status['VmHWM'] - step.rss_before
        step.memory = self.server.describe()
        print(step_line(step), flush=True)
        for error in step.errors[:5]:
            print(f'    error: {error}', flush=True)
        if len(step.errors) > 5:
            print(f'    ... {len(step.errors) - 5} more errors', flush=True)

    @contextlib.contextmanager
    def probed(self, step: Step):
        """The /healthz probe runs while the block does."""
        if not self.health:
            yield
            return
        with HealthProbe(self.health) as probe:
            yield
        step.probe_worst = probe.worst
        step.errors += [f'health probe: {e}' for e in probe.errors]

    def each(self, step: Step, function, items) -> None:
        futures = [self.pool.submit(function, step, item) for item in items]
        for future in concurrent.futures.as_completed(futures):
            try:
                future.result()
            except Exception as exc:  # a bug or a malformed answer
                step.fail(f'{type(exc).__name__}: {exc}')
