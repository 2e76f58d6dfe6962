"""Storage garbage collection and verification (``ngshare.gc``) and the
``ngshare-admin`` command line, on SQLite and PostgreSQL.

The adopted 0.6.0 deployment (its orphan, its blobs) is in test_upgrade.py;
here the rules are tested one by one: what counts as an orphan, the grace
period, the files never touched, the re-check under the service's blob lock
while a request stores the same content, and what verify reports.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from _api import ok, tree
from _blobs import put, read
from _servers import Finished, run_ngshare
from sqlalchemy import text

from ngshare import cli, gc
from ngshare.blobs.folder import FolderStore
from ngshare.blobs.lifecycle import lock_blob
from ngshare.blobs.store import blob_key
from ngshare.database import migrate
from ngshare.database.engine import make_engine, make_session_factories
from ngshare.database.models import File

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / 'tests' / 'fixtures' / 'ngshare-0.6.0'
NOW = 1_900_000_000.0
HOUR = 3600


def put_file(root: Path, key: str, content: bytes = b'x', *, mtime: float) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


def keys(files) -> set[str]:
    return {stored.key for stored in files}


def admin(*args: str) -> Finished:
    """``ngshare-admin args`` as a process, as an administrator runs it."""
    return run_ngshare(list(args), module='ngshare.admin')


def test_cookie_secret_name_is_the_services():
    assert gc.COOKIE_SECRET_NAME == cli.COOKIE_SECRET_NAME


# --------------------------------------------------------------------------
# the inventory (pure: a folder and a set of keys)


def test_inventory_sorts_every_kind_of_file(tmp_path):
    root = tmp_path / 'files'
    old, young = NOW - 2 * HOUR, NOW - 60
    blob = blob_key(b'referenced')
    put_file(root, blob, mtime=old)
    put_file(root, '0d4ad655-f3c9-4c0b-814f-bca24fddac0c.ipynb', mtime=old)
    unreferenced = blob_key(b'unreferenced')
    put_file(root, unreferenced, mtime=old)
    put_file(root, 'a67a6e40-89cc-4293-9bec-5e12ede2c01f.ipynb', mtime=old)
    put_file(root, blob.rsplit('/', 1)[0] + '/.tmp-crashed', mtime=old)
    put_file(root, blob.rsplit('/', 1)[0] + '/.tmp-writing', mtime=young)
    put_file(root, '.probe-starting', mtime=young)
    put_file(root, 'just-stored', mtime=young)
    put_file(root, 'from-the-future', mtime=NOW + HOUR)
    put_file(root, gc.COOKIE_SECRET_NAME, mtime=old)
    put_file(root, 'ngshare.db', mtime=old)
    put_file(root, 'ngshare.db-wal', mtime=old)
    (root / 'sha256' / 'ee' / 'ff').mkdir(parents=True)
    os.utime(root / 'sha256' / 'ee' / 'ff', (old, old))
    outside = tmp_path / 'outside'
    put_file(outside, 'kept.bin', mtime=old)
    (root / 'linked-folder').symlink_to(outside)
    (root / 'linked-file').symlink_to(outside / 'kept.bin')
    os.utime(root / 'linked-file', (old, old), follow_symlinks=False)

    inventory = gc.take_inventory(
        root,
        {blob, '0d4ad655-f3c9-4c0b-814f-bca24fddac0c.ipynb', 'never-stored'},
        now=NOW,
        grace_seconds=HOUR,
        protected_paths=[root / 'ngshare.db', root / 'ngshare.db-wal'],
    )

    assert keys(inventory.orphans) == {
        unreferenced,
        'a67a6e40-89cc-4293-9bec-5e12ede2c01f.ipynb',
        blob.rsplit('/', 1)[0] + '/.tmp-crashed',
        'linked-file',
    }
    assert keys(inventory.recent) == {
        blob.rsplit('/', 1)[0] + '/.tmp-writing',
        '.probe-starting',
        'just-stored',
        'from-the-future',
    }
    assert inventory.referenced == 2
    assert sorted(inventory.protected) == sorted(
        [gc.COOKIE_SECRET_NAME, 'ngshare.db', 'ngshare.db-wal']
    )
    by_key = {stored.key: stored for stored in inventory.orphans}
    assert by_key[unreferenced].size == 1 and by_key[unreferenced].mtime == old


def test_without_grace_every_unreferenced_file_is_an_orphan(tmp_path):
    root = tmp_path / 'files'
    put_file(root, 'a', mtime=NOW)
    put_file(root, 'sub/.tmp-b', mtime=NOW - 1)
    put_file(root, gc.COOKIE_SECRET_NAME, mtime=NOW)
    inventory = gc.take_inventory(root, set(), now=NOW, grace_seconds=0)
    assert keys(inventory.orphans) == {'a', 'sub/.tmp-b'}
    assert inventory.recent == [] and inventory.protected == [gc.COOKIE_SECRET_NAME]


def test_database_files_are_those_of_sqlite_only(tmp_path):
    db = tmp_path / 'x' / 'ngshare.db'
    assert gc.database_files(f'sqlite:///{db}') == [
        str(db),
        f'{db}-journal',
        f'{db}-wal',
        f'{db}-shm',
    ]
    assert gc.database_files('sqlite://') == []
    assert gc.database_files('postgresql+psycopg://u:p@h/db') == []


# --------------------------------------------------------------------------
# removal, on a real database


@pytest.fixture(params=['sqlite', 'postgresql'])
def database(request, tmp_path):
    """An engine at head with an assignment (``_id`` 1) to own file rows."""
    if request.param == 'sqlite':
        url = f'sqlite:///{tmp_path / "ngshare.db"}'
    else:
        url = request.getfixturevalue('postgres_url')
    engine = make_engine(url)
    migrate.upgrade(engine, None)
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO courses (_id, id) VALUES (1, 'NBG 101')",
            "INSERT INTO assignments (_id, id, course_id) VALUES (1, 'ps1', 1)",
        ):
            connection.execute(text(statement))
    yield engine
    engine.dispose()


def add_row(engine, key: str, content: bytes = b'x', size: int | None = None):
    with engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO files (filename, checksum, actual_name, size,'
                ' assignment_id) VALUES (:name, :checksum, :key, :size, 1)'
            ),
            {
                'name': key,
                'checksum': hashlib.md5(content).hexdigest(),
                'key': key,
                'size': len(content) if size is None else size,
            },
        )


def test_removal_checks_each_candidate_again(database, tmp_path):
    store = FolderStore(tmp_path / 'files')
    old = time.time() - 2 * HOUR
    for key in ('referenced-since', 'rewritten-since', 'garbage', 'gone-since'):
        put_file(store.root, key, mtime=old)
    candidates = gc.take_inventory(
        store.root, set(), now=time.time(), grace_seconds=HOUR
    ).orphans
    assert len(candidates) == 4
    # Between the scan and the removal:
    add_row(database, 'referenced-since')
    put_file(store.root, 'rewritten-since', b'new', mtime=time.time())
    (store.root / 'gone-since').unlink()

    _reader, writer = make_session_factories(database)
    result = gc.delete_orphans(writer, store, candidates, grace_seconds=HOUR)

    assert keys(result.deleted) == {'garbage'}
    assert keys(result.kept) == {'referenced-since', 'rewritten-since', 'gone-since'}
    assert result.failed == []
    assert sorted(p.name for p in store.root.iterdir()) == [
        'referenced-since',
        'rewritten-since',
    ]


@pytest.mark.parametrize('request_commits', [True, False], ids=['commit', 'rollback'])
def test_removal_waits_for_a_request_storing_the_same_blob(
    database, tmp_path, request_commits
):
    """A request (as in ngshare.operations.trees.store_tree) holds the blob
    lock while it stores the content that is an orphan right now; gc waits
    for it, and then keeps the blob if the request committed a row."""
    content = b'the same content'
    store = FolderStore(tmp_path / 'files')
    key, _created = put(store, content)
    os.utime(store.path_for(key), (time.time() - 2 * HOUR,) * 2)
    candidates = gc.take_inventory(
        store.root, set(), now=time.time(), grace_seconds=HOUR
    ).orphans
    assert keys(candidates) == {key}
    _reader, writer = make_session_factories(database)

    with writer() as session:
        session.execute(text('SELECT 1'))
        lock_blob(session, key, shared=True)
        assert put(store, content) == (key, False)
        session.add(
            File(
                filename='a',
                checksum=hashlib.md5(content).hexdigest(),
                actual_name=key,
                size=len(content),
                assignment_id=1,
            )
        )
        session.flush()

        outcome = {}
        collector = threading.Thread(
            target=lambda: outcome.update(
                result=gc.delete_orphans(writer, store, candidates, grace_seconds=HOUR)
            )
        )
        collector.start()
        collector.join(1.0)
        assert collector.is_alive(), 'gc did not wait for the blob lock'
        assert store.path_for(key).exists()
        if request_commits:
            session.commit()
        else:
            session.rollback()
    collector.join(60)
    assert not collector.is_alive()
    result = outcome['result']
    if request_commits:
        assert keys(result.kept) == {key} and result.deleted == []
        assert read(store, key) == content
    else:
        assert keys(result.deleted) == {key}
        assert not store.path_for(key).exists()


def test_collect_garbage_reports_before_it_removes(database, tmp_path):
    store = FolderStore(tmp_path / 'files')
    kept, _ = put(store, b'kept')
    orphan, _ = put(store, b'orphan')
    add_row(database, kept, b'kept')
    for key in (kept, orphan):
        os.utime(store.path_for(key), (time.time() - 2 * HOUR,) * 2)
    put(store, b'just stored')

    dry = gc.collect_garbage(database, store, delete=False)
    assert keys(dry.inventory.orphans) == {orphan}
    assert keys(dry.inventory.recent) == {blob_key(b'just stored')}
    assert dry.deleted == [] and store.path_for(orphan).exists()

    done = gc.collect_garbage(database, store, delete=True)
    assert keys(done.deleted) == {orphan}
    assert not store.path_for(orphan).exists()
    assert read(store, kept) == b'kept'
    assert read(store, blob_key(b'just stored')) == b'just stored'


def add_release(engine, key: str, released_at: float) -> None:
    """A ``released_blobs`` record, as the service writes one."""
    when = datetime.datetime.fromtimestamp(released_at, datetime.timezone.utc)
    with engine.begin() as connection:
        connection.execute(
            text('INSERT INTO released_blobs (key, released_at) VALUES (:k, :t)'),
            {'k': key, 't': when.replace(tzinfo=None)},
        )


def test_blobs_released_within_the_grace_are_left_to_the_service(database, tmp_path):
    """A blob the service released less than the grace ago may still be
    streamed by a download: gc reports it apart and never removes it, even
    if it is released between the scan and the removal. One released longer
    ago is garbage like any other."""
    store = FolderStore(tmp_path / 'files')
    young, _ = put(store, b'released a minute ago')
    expired, _ = put(store, b'released two hours ago')
    late, _ = put(store, b'released after the scan')
    for key in (young, expired, late):
        os.utime(store.path_for(key), (time.time() - 3 * HOUR,) * 2)
    add_release(database, young, time.time() - 60)
    add_release(database, expired, time.time() - 2 * HOUR)

    dry = gc.collect_garbage(database, store, delete=False, grace_seconds=HOUR)
    assert keys(dry.inventory.released) == {young}
    assert keys(dry.inventory.orphans) == {expired, late}
    assert dry.inventory.recent == []

    add_release(database, late, time.time())
    _reader, writer = make_session_factories(database)
    result = gc.delete_orphans(writer, store, dry.inventory.orphans, grace_seconds=HOUR)
    assert keys(result.deleted) == {expired}
    assert keys(result.kept) == {late}
    assert store.path_for(young).is_file() and store.path_for(late).is_file()
    assert not store.path_for(expired).exists()


# --------------------------------------------------------------------------
# verify


def test_verify_names_every_bad_blob(database, tmp_path):
    store = FolderStore(tmp_path / 'files')
    good, _ = put(store, b'good')
    add_row(database, good, b'good')
    add_row(database, good, b'good')  # two rows, one blob, read once
    put_file(store.root, 'legacy.ipynb', b'legacy', mtime=time.time())
    add_row(database, 'legacy.ipynb', b'legacy')
    add_row(database, 'missing.ipynb', b'missing')
    changed, _ = put(store, b'original')
    add_row(database, changed, b'original')
    store.path_for(changed).write_bytes(b'changed!')
    resized = 'resized.bin'
    put_file(store.root, resized, b'12345', mtime=time.time())
    add_row(database, resized, b'12345', size=4)
    misnamed = blob_key(b'one thing')
    put_file(store.root, misnamed, b'another', mtime=time.time())
    add_row(database, misnamed, b'another')
    add_row(database, '../outside', b'x')
    add_row(database, 'sha256', b'x')  # a folder

    result = gc.verify_blobs(database, store)

    assert result.rows == 9 and result.blobs == 8
    assert not result.ok
    reasons = {bad.key: bad.reason for bad in result.problems}
    assert set(reasons) == {
        'missing.ipynb',
        changed,
        resized,
        misnamed,
        '../outside',
        'sha256',
    }
    assert reasons['missing.ipynb'] == 'missing'
    assert 'md5' in reasons[changed]
    assert '5 bytes' in reasons[resized]
    assert 'sha256' in reasons[misnamed]
    assert reasons['../outside'] == 'illegal blob name'
    assert reasons['sha256'] == 'not a file'


def test_verify_reads_a_060_database_without_changing_it(tmp_path):
    db = tmp_path / 'ngshare.db'
    shutil.copy2(FIXTURE / 'ngshare.db', db)
    before = db.read_bytes()
    done = admin(
        'verify', '--database', f'sqlite:///{db}', '--storage', str(FIXTURE / 'files')
    )
    assert done.returncode == 0, done.output
    assert 'verified 21 files (21 blobs): all intact' in done.stderr
    assert db.read_bytes() == before


# --------------------------------------------------------------------------
# the command line


def test_admin_help(admin_main):
    done = admin_main('--help')
    assert done.returncode == 0
    for command in ('gc', 'verify', 'upgrade'):
        assert command in done.stdout
    text = ' '.join(admin_main('gc', '--help').stdout.split())
    for word in (
        '--database',
        '--storage',
        '--delete',
        '--grace-seconds',
        '/srv/ngshare/ngshare.db',
        '/srv/ngshare/files/',
        '3600',
    ):
        assert word in text, text


def test_admin_is_a_console_script():
    pyproject = (REPO / 'pyproject.toml').read_text()
    scripts = pyproject.split('[project.scripts]', 1)[1].split('\n[', 1)[0]
    assert 'ngshare-admin = "ngshare.admin:main"' in scripts.splitlines()


def test_admin_refuses_what_it_cannot_use(tmp_path, admin_main):
    storage = tmp_path / 'files'
    storage.mkdir()
    missing_db = tmp_path / 'typo.db'
    cases = [
        (['gc', '--database', f'sqlite:///{missing_db}'], 'does not exist'),
        (['verify', '--database', f'sqlite:///{missing_db}'], 'does not exist'),
        (['upgrade', '--database', f'sqlite:///{missing_db}'], 'does not exist'),
        (['gc', '--database', 'nonsense'], 'invalid database URL'),
    ]
    for args, message in cases:
        done = admin_main(*args, '--storage', str(storage))
        assert done.returncode == 2, done.output
        errors = [
            line
            for line in done.stderr.splitlines()
            if line.startswith('ngshare-admin: error:')
        ]
        assert len(errors) == 1 and message in errors[0], done.output
        assert 'Traceback' not in done.output
    assert not missing_db.exists()

    db = tmp_path / 'ngshare.db'
    shutil.copy2(FIXTURE / 'ngshare.db', db)
    no_storage = admin_main(
        'gc', '--database', f'sqlite:///{db}', '--storage', str(tmp_path / 'no')
    )
    assert no_storage.returncode == 2 and 'does not exist' in no_storage.stderr
    old = admin_main('gc', '--database', f'sqlite:///{db}', '--storage', str(storage))
    assert old.returncode == 2, old.output
    assert 'upgrade it first' in old.stderr and '1921a169739b' in old.stderr
    for bad in ('-1', 'soon', 'nan'):
        usage = admin_main('gc', '--grace-seconds', bad)
        assert usage.returncode == 2 and 'grace' in usage.stderr, usage.output


def test_admin_upgrade_is_idempotent(tmp_path, admin_main):
    db = tmp_path / 'ngshare.db'
    shutil.copy2(FIXTURE / 'ngshare.db', db)
    flags = ['--database', f'sqlite:///{db}', '--storage', str(FIXTURE / 'files')]
    first = admin_main('upgrade', *flags)
    assert first.returncode == 0, first.output
    assert f'from revision 1921a169739b to {migrate.head_revision()}' in first.stderr
    second = admin_main('upgrade', *flags)
    assert second.returncode == 0, second.output
    assert f'already at revision {migrate.head_revision()}' in second.stderr
    c = sqlite3.connect(db)
    sizes = c.execute('SELECT COUNT(*) FROM files WHERE size IS NULL').fetchone()
    c.close()
    assert sizes == (0,)


def test_gc_never_touches_the_database_or_cookie_secret_in_storage(
    start_ngshare, tmp_path
):
    """An administrator who keeps the SQLite file in the storage folder: its
    files and the cookie secret beside it are not garbage, even with no
    grace period, while the service writes to them."""
    folder = tmp_path / 'srv'
    url = f'sqlite:///{folder / "ngshare.db"}'
    server = start_ngshare(hub_mode=False, database_url=url, storage=folder)
    ok(server.post(('course', 'C'), user='root'))
    ok(
        server.post(
            ('assignment', 'C', 'a'), user='root', data={'files': tree({'x': b'1'})}
        )
    )
    assert (folder / gc.COOKIE_SECRET_NAME).exists()
    put_file(folder, 'stray.bin', mtime=time.time() - 2 * HOUR)
    before = {p.name for p in folder.iterdir()}
    assert {'ngshare.db', 'sha256'} <= before

    done = admin(
        'gc',
        '--delete',
        '--grace-seconds',
        '0',
        '--database',
        url,
        '--storage',
        str(folder),
    )

    assert done.returncode == 0, done.output
    assert done.stdout.splitlines() == ['stray.bin']
    assert {p.name for p in folder.iterdir()} == before - {'stray.bin'}
    assert ok(server.get(('assignment', 'C', 'a'), user='root'))['files']
    ok(server.post(('course', 'D'), user='root'))
