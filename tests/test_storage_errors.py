"""A storage folder that is full or unavailable: a JSON 507 or 503, not a 500.

Real file systems refuse real writes here, in four ways:

* ``rlimit``: the server runs with ``RLIMIT_FSIZE`` of 1 MiB (CPython
  ignores SIGXFSZ, so a larger write fails with ``EFBIG``): storage full,
  and no privilege needed;
* ``tmpfs``: the storage folder is a 1 MiB tmpfs (``ENOSPC``): storage full;
* ``shard-file``: the shard folder a blob goes to is a regular file
  (``ENOTDIR``): storage unavailable, no privilege needed;
* ``read-only``: the storage tmpfs is remounted read-only (``EROFS``).

The two tmpfs ways need root with the right to mount, and are skipped, with
the reason, only where that is missing. Each case fails a release and a
submission, then checks the answer, the one log line for the admin, that
nothing of the request is in the database or the storage folder, and that
the server goes on serving.
"""

from __future__ import annotations

import contextlib
import hashlib
import resource
import subprocess
from pathlib import Path

import pytest
from _api import err, ok, tree
from _mounts import tmpfs

pytestmark = pytest.mark.both_databases

LIMIT = 1024 * 1024
BIG = LIMIT * 2  # over the file size limit, and over the tmpfs
COURSE = 'Disk 101'


def blob_key(content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    return f'sha256/{digest[:2]}/{digest[2:4]}/{digest}'


def big_content(seed: str) -> bytes:
    return (seed.encode() * (BIG // len(seed) + 1))[:BIG]


def _mount(*args: str) -> None:
    subprocess.run(['mount', *args], check=True, capture_output=True, timeout=30)


def limit_file_size() -> None:
    """In the server's process, before ngshare starts: files up to LIMIT."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


class Case:
    """One way to make the storage refuse, around one server."""

    status = 507
    message = 'Storage full'
    errno_name = 'ENOSPC'

    def __init__(self, start_ngshare, tmp_path: Path, database_url):
        self.start_ngshare = start_ngshare
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.stack = contextlib.ExitStack()

    def start(self, **options):
        self.server = self.start_ngshare(
            hub_mode=True, database_url=self.database_url, **options
        )
        self.stack.callback(self.server.stop)  # before any unmount
        return self.server

    def setup(self):
        return self.start()

    def content(self, name: str) -> bytes:
        """What the failing upload ``name`` stores."""
        return big_content(name)

    def break_for(self, content: bytes) -> None:
        """Make the storage refuse ``content`` (after the setup uploads)."""

    def repair(self) -> None:
        """Let the storage accept writes again (for the final check)."""

    def close(self) -> None:
        self.stack.close()


class RlimitCase(Case):
    errno_name = 'EFBIG'

    def setup(self):
        return self.start(preexec_fn=limit_file_size)


class TmpfsCase(Case):
    def setup(self):
        storage = self.stack.enter_context(tmpfs(self.tmp_path / 'small', '1m'))
        return self.start(storage=storage)


class ShardFileCase(Case):
    status = 503
    message = 'Storage unavailable'
    errno_name = 'ENOTDIR'

    def content(self, name: str) -> bytes:
        return f'{name}: a small file\n'.encode()

    def break_for(self, content: bytes) -> None:
        shard = self.server.storage / blob_key(content).rsplit('/', 2)[0]
        assert not shard.exists(), 'pick another content: shard already used'
        shard.parent.mkdir(parents=True, exist_ok=True)
        shard.write_bytes(b'not a folder')
        self.broken = getattr(self, 'broken', []) + [shard]

    def repair(self) -> None:
        for shard in self.broken:
            shard.unlink()
        self.broken = []


class ReadOnlyCase(Case):
    status = 503
    message = 'Storage unavailable'
    errno_name = 'EROFS'

    def setup(self):
        self.storage = self.stack.enter_context(tmpfs(self.tmp_path / 'ro', '64m'))
        return self.start(storage=self.storage)

    def content(self, name: str) -> bytes:
        return f'{name}: a small file\n'.encode()

    def break_for(self, content: bytes) -> None:
        _mount('-o', 'remount,ro', str(self.storage))

    def repair(self) -> None:
        _mount('-o', 'remount,rw', str(self.storage))


CASES = {
    'rlimit': RlimitCase,
    'tmpfs': TmpfsCase,
    'shard-file': ShardFileCase,
    'read-only': ReadOnlyCase,
}


@pytest.fixture(params=list(CASES))
def case(request, start_ngshare, tmp_path, ngshare_database_url):
    instance = CASES[request.param](start_ngshare, tmp_path, ngshare_database_url)
    try:
        yield instance
    finally:
        instance.close()


def stored_files(server) -> set[str]:
    """Every blob key in the storage folder, temporary files included."""
    root = server.storage / 'sha256'
    if not root.is_dir():
        return set()
    return {
        path.relative_to(server.storage).as_posix()
        for path in root.rglob('*')
        if path.is_file()
    }


def file_rows(server) -> list[dict]:
    dump = ok(
        server.request(
            'GET', 'initialize-Data6ase', user='root', params={'action': 'dump'}
        )
    )
    return dump['files']


def release(server, assignment: str, content: bytes):
    return server.post(
        ('assignment', COURSE, assignment),
        user='eric',
        data={'files': tree({'small.txt': b'fine\n', 'data.bin': content})},
    )


def submit(server, assignment: str, content: bytes):
    return server.post(
        ('submission', COURSE, assignment),
        user='lawrence',
        data={'files': tree({'answer.txt': b'mine\n', 'data.bin': content})},
    )


def test_storage_refusal_answers_json_and_stores_nothing(case):
    server = case.setup()
    ok(server.post(('course', COURSE), user='root', data={'instructors': '["eric"]'}))
    ok(
        server.post(
            ('student', COURSE, 'lawrence'),
            user='eric',
            data={'first_name': 'L', 'last_name': 'W', 'email': 'l@example.org'},
        )
    )
    ok(release(server, 'ps0', b'the first assignment\n'))
    rows_before = file_rows(server)
    files_before = stored_files(server)

    for what, send in (('release', release), ('submission', submit)):
        content = case.content(f'{what} {case.__class__.__name__}')
        case.break_for(content)
        log_before = server.log_text()
        assignment = 'ps1' if what == 'release' else 'ps0'
        resp = send(server, assignment, content)
        err(resp, case.status, case.message)
        assert 'Traceback' not in resp.text
        case.repair()

        # One line for the admin: what, which errno, where, what to do.
        new_log = server.log_text()[len(log_before) :]
        advice = [
            line
            for line in new_log.splitlines()
            if f'{case.message}: cannot write sha256/' in line
        ]
        assert len(advice) == 1, new_log
        assert case.errno_name in advice[0], advice[0]
        assert str(server.storage) in advice[0]
        assert 'Traceback' not in new_log

        # Nothing of the request: no assignment, submission, row or file.
        assert server.running
        assert file_rows(server) == rows_before
        assert stored_files(server) == files_before
        names = ok(server.get(('assignments', COURSE), user='eric'))['assignments']
        assert names == ['ps0'], names
        submissions = ok(server.get(('submissions', COURSE, 'ps0'), user='eric'))
        assert submissions['submissions'] == []

    # The server goes on serving, and stores what the storage takes.
    ok(release(server, 'ps2', b'after the failure\n'))
    ok(submit(server, 'ps0', b'my answer after the failure\n'))
    assert len(file_rows(server)) == len(rows_before) + 4
