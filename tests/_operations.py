"""The operations (``ngshare/operations/``) called directly, without HTTP.

Where HTTP adds nothing (the answer of an operation, its refusal, what it
leaves in the database and the blob store), a test calls the operation the
way a handler does, through :func:`ngshare.operations.runner.run_operation`
(one transaction per operation, the blob clean-up of a failed write, the
release of blobs after a commit), on a real SQLite file and a real folder
store, both in ``tmp_path``. No process, no port. The schema is migrated
once per process (``python -m ngshare``'s own path, into a template file;
``course_ops``'s course is set up once too, by the operations), and each
test opens its own copy of that file by the service's path again (revision
checked, the upgrade then a no-op): a few milliseconds a test instead of
the ~0.1 s of a migration.

The runtime is the service's own: the :class:`~ngshare.config.Config` comes
from the real command line (``ngshare.cli.config_from`` over
``build_parser``, so every default is the documented one), and
:func:`ngshare.startup.build_runtime` opens the store and the database
(schema upgraded by ``open_database``) and makes the session factories and
the authenticator exactly as ``python -m ngshare --vngshare`` does. Callers
are :class:`~ngshare.actor.Actor` objects made by that authenticator, so
"admin" means "named in ``--admins``", as in the service.

Use::

    from _operations import ADMIN, files_json  # helpers; the fixtures
                                               # come from conftest.py

    def test_x(ops):
        ops.write('ins', release_assignment, 'c', 'a', files_json({'a.txt': b'x'}))
        err = ops.refused('out', list_assignments, 'c')
        assert (err.status, err.message) == (403, 'Permission denied')

``ops.with_flags('--released-blob-grace', '0')`` builds another runtime
with more flags; :meth:`Ops.unit` gives a raw :class:`Context` in a write session
the test controls (to show what the runner's transaction discipline adds).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ngshare.actor import Actor
from ngshare.cli import config_from
from ngshare.database.models import ReleasedBlob
from ngshare.errors import ApiError
from ngshare.filetree import md5_hex
from ngshare.flags import build_parser
from ngshare.operations.context import Context
from ngshare.operations.courses import create_course
from ngshare.operations.roster import set_student
from ngshare.operations.runner import _forget, run_operation
from ngshare.runtime import Runtime
from ngshare.startup import build_runtime

ADMIN = 'root'
INSTRUCTOR = 'ins'
STUDENT = 'stu'
OTHER_STUDENT = 'other'
OUTSIDER = 'out'
# Every kind of caller of a course's operations, by the name ``ops`` knows.
ROLES = (ADMIN, INSTRUCTOR, STUDENT, OTHER_STUDENT, OUTSIDER)
PERSON = {'first_name': 'F', 'last_name': 'L', 'email': 'e@example.org'}


def files_json(files: dict[str, bytes]) -> str:
    """The ``files`` form field of an upload of ``files`` (path: content)."""
    return json.dumps(
        [
            {'path': path, 'content': base64.b64encode(content).decode('ascii')}
            for path, content in files.items()
        ]
    )


def expected_files(files: dict[str, bytes]) -> list[tuple[str, str]]:
    """(path, md5) of ``files`` in upload order, computed here, not by ngshare."""
    return [(path, md5_hex(content)) for path, content in files.items()]


class Ops:
    """One runtime, and the ways a test calls operations on it."""

    def __init__(self, runtime: Runtime, opener: Callable[..., Ops] | None):
        self.runtime = runtime
        self._opener = opener

    def with_flags(self, *extra: str) -> Ops:
        """Another runtime (its own database and store), with more flags,
        e.g. ``ops.with_flags('--released-blob-grace', '0')``; closed with
        this one."""
        assert self._opener is not None
        return self._opener(extra)

    @property
    def store(self):
        return self.runtime.store

    def actor(self, who: str | Actor) -> Actor:
        """The caller named ``who`` as the service would identify it."""
        if isinstance(who, Actor):
            return who
        return self.runtime.authenticator.actor(who)

    def write(self, who, operation: Callable[..., dict], *args) -> dict:
        """Run ``operation`` as a write (its own committed transaction)."""
        return run_operation(self.runtime, self.actor(who), operation, args, write=True)

    def read(self, who, operation: Callable[..., dict], *args) -> dict:
        """Run ``operation`` as a read (a read-only snapshot)."""
        return run_operation(
            self.runtime, self.actor(who), operation, args, write=False
        )

    def refused(
        self, who, operation: Callable[..., dict], *args, write: bool = False
    ) -> ApiError:
        """The :class:`ApiError` the operation raises (fails if it answers)."""
        with pytest.raises(ApiError) as caught:
            (self.write if write else self.read)(who, operation, *args)
        return caught.value

    def answers(self, who, operation, *args, write: bool = False):
        """(status, message) of a refusal, or (200, answer) of a success."""
        try:
            return 200, (self.write if write else self.read)(who, operation, *args)
        except ApiError as error:
            return error.status, error.message

    @contextlib.contextmanager
    def unit(self, who=ADMIN) -> Iterator[Context]:
        """A raw Context in a write session; nothing is committed unless the
        test commits ``ctx.session``. A failure inside is undone as the
        runner undoes it (rollback, then ``_forget`` of the created blobs).
        """
        ctx = None
        try:
            with self.runtime.writer() as session:
                ctx = Context(
                    session=session,
                    store=self.store,
                    actor=self.actor(who),
                    max_file_size=self.runtime.config.max_file_size,
                    keep_deleted=self.runtime.config.deleted_retention_days > 0,
                )
                yield ctx
        except BaseException:
            _forget(self.runtime, ctx)
            raise

    def count(self, model, *where) -> int:
        """Rows of ``model`` (matching ``where``), read in a fresh snapshot."""
        with self.runtime.reader() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where))

    def blob_keys(self) -> set[str]:
        """Every blob in the store (temporary files aside)."""
        return {
            stored.key
            for stored in self.store.iter_files()
            if stored.key.startswith('sha256/')
        }

    def released_keys(self) -> set[str]:
        with self.runtime.reader() as session:
            return set(session.scalars(select(ReleasedBlob.key)))

    def content(self, key: str) -> bytes:
        with self.store.open(key) as stream:
            return stream.read()

    def tree(self, answer: dict, field: str = 'files') -> dict[str, bytes]:
        """An answer's files as path: content, read from the store."""
        return {ref.path: self.content(ref.key) for ref in answer[field]}

    def course(
        self,
        course_id: str = 'c',
        *,
        instructors=(INSTRUCTOR,),
        students=(STUDENT, OTHER_STUDENT),
    ) -> None:
        """Create ``course_id`` (as the admin) with its roster."""
        self.write(ADMIN, create_course, course_id, json.dumps(list(instructors)))
        for name in students:
            self.write(instructors[0], set_student, course_id, name, dict(PERSON))


def _close(runtime: Runtime) -> None:
    runtime.shutdown()
    runtime.engine.dispose()


DATABASE_FILE = 'ngshare.db'


def _runtime_in(folder: Path, extra=()) -> Runtime:
    """``python -m ngshare --vngshare --admins root`` with its database and
    store in ``folder`` (and ``extra`` flags), up to serving."""
    args = build_parser().parse_args(
        [
            '--vngshare',
            '--admins',
            ADMIN,
            '--database',
            f'sqlite:///{folder / DATABASE_FILE}',
            '--storage',
            str(folder / 'files'),
            *extra,
        ]
    )
    return build_runtime(config_from(args, {}))


# The template databases of this process (an xdist worker is a process):
# 'empty' (migrated), 'course' (migrated, then course c set up).
_templates: dict[str, Path] = {}


def _template(tmp_path_factory, kind: str) -> Path:
    """A SQLite file at the current schema, made once per process by the
    service's path (and, for 'course', with :meth:`Ops.course` run on it),
    then closed, so that its WAL is checkpointed into the file. Not a
    session fixture: a test module then imports only ``ops`` or
    ``course_ops``."""
    if kind not in _templates:
        folder = tmp_path_factory.mktemp(f'ops-template-{kind}')
        runtime = _runtime_in(folder)
        if kind == 'course':
            Ops(runtime, None).course()
        _close(runtime)
        _templates[kind] = folder / DATABASE_FILE
    return _templates[kind]


class _Runtimes:
    """The runtimes of one test, each on a copy of a template database."""

    def __init__(self, tmp_path: Path, tmp_path_factory):
        self.tmp_path = tmp_path
        self.tmp_path_factory = tmp_path_factory
        self.opened: list[Runtime] = []

    def open(self, extra=(), kind: str = 'empty') -> Ops:
        folder = self.tmp_path / f'ops{len(self.opened)}'
        folder.mkdir()
        template = _template(self.tmp_path_factory, kind)
        shutil.copyfile(template, folder / DATABASE_FILE)
        runtime = _runtime_in(folder, extra)
        self.opened.append(runtime)
        return Ops(runtime, self.open)

    def close(self) -> None:
        for runtime in self.opened:
            _close(runtime)


@pytest.fixture
def ops(tmp_path, tmp_path_factory) -> Iterator[Ops]:
    """A runtime with every documented default and ``root`` as admin;
    ``ops.with_flags(...)`` makes another with more flags."""
    runtimes = _Runtimes(tmp_path, tmp_path_factory)
    yield runtimes.open()
    runtimes.close()


@pytest.fixture
def course_ops(tmp_path, tmp_path_factory) -> Iterator[Ops]:
    """``ops`` with course ``c`` (as :meth:`Ops.course` makes it):
    instructor ``ins``, students ``stu`` then ``other``; ``out`` is in no
    course."""
    runtimes = _Runtimes(tmp_path, tmp_path_factory)
    yield runtimes.open(kind='course')
    runtimes.close()


__all__ = [
    'ADMIN',
    'INSTRUCTOR',
    'OTHER_STUDENT',
    'OUTSIDER',
    'PERSON',
    'ROLES',
    'STUDENT',
    'Ops',
    'course_ops',
    'expected_files',
    'files_json',
    'ops',
]
