"""The blob lifecycle (``ngshare.blobs.lifecycle``) and the folder store's
interface, on a real database and a real folder: a blob is removed only when
no row refers to it (and, for a failed request's clean-up, when it is not
waiting out its grace), only under the blob lock, and the request path does
not import the admin tool to get there."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading

import pytest
from _blobs import put, read
from sqlalchemy import text

from ngshare.blobs import open_store
from ngshare.blobs.folder import FolderStore
from ngshare.blobs.lifecycle import is_referenced, lock_blob, remove_unreferenced
from ngshare.blobs.store import TEMPORARY_PREFIXES, blob_key
from ngshare.database import migrate
from ngshare.database.engine import make_engine, make_session_factories
from ngshare.database.models import File
from ngshare.operations.released import hold_released
from ngshare.timestamps import utc_now


@pytest.fixture(params=['sqlite', 'postgresql'])
def writer(request, tmp_path):
    """Write sessions on a database at head with an assignment (``_id`` 1)."""
    if request.param == 'sqlite':
        url = f'sqlite:///{tmp_path / "ngshare.db"}'
    else:
        url = request.getfixturevalue('postgres_url')
    engine = make_engine(url)
    migrate.upgrade(engine, None)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO courses (_id, id) VALUES (1, 'c')"))
        connection.execute(
            text("INSERT INTO assignments (_id, id, course_id) VALUES (1, 'a', 1)")
        )
    yield make_session_factories(engine)[1]
    engine.dispose()


def file_row(key: str, content: bytes) -> File:
    return File(
        filename=key,
        checksum=hashlib.md5(content).hexdigest(),  # noqa: S324
        actual_name=key,
        size=len(content),
        assignment_id=1,
    )


def test_removes_only_what_nothing_holds(writer, tmp_path):
    store = FolderStore(tmp_path / 'files')
    referenced, _ = put(store, b'referenced')
    released, _ = put(store, b'released')
    garbage, _ = put(store, b'garbage')
    with writer() as session:
        session.add(file_row(referenced, b'referenced'))
        hold_released(session, [released], now=utc_now())
        session.commit()

    remove_unreferenced(
        writer, store, [referenced, released, garbage, garbage], unless_released=True
    )
    assert [store.exists(k) for k in (referenced, released, garbage)] == [
        True,
        True,
        False,
    ]
    remove_unreferenced(writer, store, [referenced, released])
    assert store.exists(referenced) and not store.exists(released)
    with writer() as session:
        assert is_referenced(session, referenced)
        assert not is_referenced(session, released)


@pytest.mark.parametrize('request_commits', [True, False], ids=['commit', 'rollback'])
def test_removal_waits_for_a_writer_of_the_same_blob(writer, tmp_path, request_commits):
    """A request storing the same content (shared blob lock, as
    ``operations.trees.store_tree`` takes it) holds the removal back until it
    ends; the blob stays if the request committed a row referring to it."""
    content = b'the same content'
    store = FolderStore(tmp_path / 'files')
    key, _ = put(store, content)
    with writer() as session:
        session.execute(text('SELECT 1'))
        lock_blob(session, key, shared=True)
        session.add(file_row(key, content))
        session.flush()
        remover = threading.Thread(
            target=remove_unreferenced, args=(writer, store, [key])
        )
        remover.start()
        remover.join(1.0)
        assert remover.is_alive(), 'the removal did not wait for the blob lock'
        assert store.exists(key)
        if request_commits:
            session.commit()
        else:
            session.rollback()
    remover.join(60)
    assert not remover.is_alive()
    assert store.exists(key) is request_commits


def test_a_failed_removal_is_logged_not_raised(tmp_path, caplog):
    """The clean-up after a request never turns its answer into a 500."""
    store = FolderStore(tmp_path / 'files')
    key, _ = put(store, b'x')
    engine = make_engine(f'sqlite:///{tmp_path / "empty.db"}')  # no schema
    try:
        remove_unreferenced(make_session_factories(engine)[1], store, [key])
    finally:
        engine.dispose()
    assert store.exists(key)
    assert 'Could not remove unreferenced blobs' in caplog.text


def test_folder_store_keeps_the_interface(tmp_path):
    store = open_store(str(tmp_path / 'files'))
    assert isinstance(store, FolderStore)
    store.check_usable()
    key = blob_key(b'content')
    digest = hashlib.sha256(b'content').hexdigest()
    assert key == f'sha256/{digest[:2]}/{digest[2:4]}/{digest}'
    assert store.put(key, b'content') is True
    assert store.put(key, b'content') is False
    assert read(store, key) == b'content'
    assert store.stat(key).size == len(b'content')
    assert [found.key for found in store.iter_files()] == [key]
    store.delete(key)
    store.delete(key)  # already gone: nothing to do
    assert not store.exists(key) and store.stat(key) is None
    with pytest.raises(FileNotFoundError):
        store.open(key)
    with pytest.raises(ValueError):
        store.put('../outside', b'x')
    assert TEMPORARY_PREFIXES == ('.tmp-', '.probe-', '.secret-')


def test_the_request_path_does_not_import_the_admin_tool():
    """``operations`` and ``handlers`` reach the blob lifecycle without
    ``ngshare.gc`` (which used to hold ``is_referenced``), ``admin`` or ``cli``."""
    probe = (
        'import sys, ngshare.app, ngshare.housekeeping, ngshare.operations.runner;'
        'print(sorted(m for m in sys.modules if m in'
        " ('ngshare.gc', 'ngshare.admin', 'ngshare.cli')))"
    )
    shown = subprocess.run(
        [sys.executable, '-c', probe], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == '[]'
