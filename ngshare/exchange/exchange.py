"""The base of the ngshare exchange classes: configuration, files, errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from textwrap import dedent
from typing import TypeVar

from jupyter_core.paths import jupyter_data_dir
from nbgrader.exchange.abc import Exchange as ABCExchange
from nbgrader.utils import ignore_patterns
from traitlets import Bool, Float, Integer, Unicode, default

from .client import NgshareClient, NgshareError, current_user, resolve_url
from .tree import UnsafeTree, plan_tree, target_inside
from .uploads import UploadFile, upload_file

__all__ = ['Exchange', 'UnsafeTree', 'checksum_of', 'describe_os_error']

T = TypeVar('T')


def checksum_of(path: str | os.PathLike) -> str:
    """md5 of a file, as ngshare reports checksums."""
    digest = hashlib.md5()  # noqa: S324 (ngshare's checksums are md5)
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def describe_os_error(exc: OSError, root: str) -> str:
    """An OSError as a short reason, with its path relative to ``root``
    (the temporary folder's name means nothing to the reader)."""
    reason = exc.strerror or exc.__class__.__name__
    if exc.filename:
        name = os.fsdecode(exc.filename)
        with contextlib.suppress(ValueError):
            rel = os.path.relpath(name, root)
            if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                name = rel
        return f'cannot write {name!r}: {reason}'
    return f'cannot write the files: {reason}'


class Exchange(ABCExchange):
    """nbgrader's exchange over ngshare's REST API.

    Configure it with ``configureExchange(c, URL)``, which sets
    ``c.Exchange.ngshare_url``. The local layout (``assignment_dir``,
    ``path_includes_course``, the submission ``cache``) is the one of
    nbgrader's own filesystem exchange, with the same options.
    """

    ngshare_url = Unicode(
        '',
        help=dedent(
            """
            URL of the ngshare service, e.g.
            http://127.0.0.1:10101/services/ngshare. When empty, ngshare is
            looked up at http://proxy-public/services/ngshare inside
            Kubernetes (Zero to JupyterHub); elsewhere it must be set.
            """
        ),
    ).tag(config=True)

    # The name ngshare_exchange used; honoured when ngshare_url is unset.
    _ngshare_url = Unicode('').tag(config=True)

    timeout = Float(120.0, help='Seconds to wait for each answer of ngshare.').tag(
        config=True
    )

    retries = Integer(
        1, help='How often a request that met a network error is sent again.'
    ).tag(config=True)

    retry_delay = Float(1.0, help='Seconds to wait before sending again.').tag(
        config=True
    )

    cache = Unicode(
        '',
        help=dedent(
            """
            Local cache directory for nbgrader submit and nbgrader list.
            Defaults to $JUPYTER_DATA_DIR/nbgrader_cache
            """
        ),
    ).tag(config=True)

    @default('cache')
    def _cache_default(self):
        return os.path.join(jupyter_data_dir(), 'nbgrader_cache')

    path_includes_course = Bool(
        False,
        help=dedent(
            """
            Whether the path for fetching/submitting assignments should be
            prefixed with the course name. If this is `False`, then the path
            will be something like `./ps1`. If this is `True`, then the path
            will be something like `./course123/ps1`.
            """
        ),
    ).tag(config=True)

    # -- the connection ------------------------------------------------------

    @property
    def url(self) -> str:
        return resolve_url(self.ngshare_url or self._ngshare_url)

    @property
    def username(self) -> str:
        return current_user()

    @property
    def client(self) -> NgshareClient:
        client = getattr(self, '_client', None)
        if client is None:
            try:
                url = self.url
            except NgshareError as exc:
                self.fail(f'Cannot use ngshare: {exc}')
            client = NgshareClient(
                url,
                timeout=self.timeout,
                retries=self.retries,
                retry_delay=self.retry_delay,
                log=self.log,
            )
            self._client = client
        return client

    def call(self, what: str, request: Callable[[], T]) -> T:
        """Run ``request``; turn an ngshare failure into an ExchangeError.

        ``what`` names the operation with its course and assignment, e.g.
        ``"fetch assignment 'ps1' of course 'NBG101'"``.
        """
        try:
            return request()
        except NgshareError as exc:
            self.fail(f'Cannot {what}: {exc}')

    # -- names and places ----------------------------------------------------

    def require_course(self) -> str:
        course_id = self.coursedir.course_id
        if course_id in ('', '*'):
            self.fail(
                'No course id specified. Re-run with --course flag'
                " (c.CourseDirectory.course_id = '*' does not name one course)."
            )
        return course_id

    def local_assignment_dir(self, course_id: str, assignment_id: str) -> str:
        """Where a fetched assignment lives, as nbgrader's exchange puts it."""
        if self.path_includes_course:
            return os.path.join(self.assignment_dir, course_id, assignment_id)
        return os.path.join(self.assignment_dir, assignment_id)

    @staticmethod
    def what(action: str, course_id: str, assignment_id: str | None = None) -> str:
        if assignment_id:
            return f'{action} {assignment_id!r} of course {course_id!r}'
        return f'{action} of course {course_id!r}'

    # -- directory trees -----------------------------------------------------

    def encode_tree(self, root: str, what: str) -> list[UploadFile]:
        """The files under ``root`` to upload as ngshare's directory tree.

        :meth:`NgshareClient.upload` encodes them as the server takes them
        (raw parts or the documented base64 JSON). Honours
        ``CourseDirectory.ignore``, ``include`` and ``max_file_size`` with
        nbgrader's own filter (ignored files are logged, too large ones with
        a warning) and fails when what is left is larger than
        ``CourseDirectory.max_dir_size``.
        """
        coursedir = self.coursedir
        skip = ignore_patterns(
            exclude=coursedir.ignore,
            include=coursedir.include,
            max_file_size=coursedir.max_file_size,
            log=self.log,
        )
        chosen: list[tuple[str, str]] = []
        total = 0
        for dirpath, dirnames, filenames in os.walk(root):
            ignored = set(skip(dirpath, sorted(dirnames + filenames)))
            dirnames[:] = sorted(d for d in dirnames if d not in ignored)
            for name in sorted(filenames):
                if name in ignored:
                    continue
                full = os.path.join(dirpath, name)
                if not os.path.isfile(full):
                    self.log.warning('Skipping %s: not a regular file', full)
                    continue
                rel = Path(os.path.relpath(full, root)).as_posix()
                chosen.append((rel, full))
                total += os.path.getsize(full)
        limit = 1000 * coursedir.max_dir_size
        if total > limit:
            self.fail(
                f'Cannot {what}: {root} holds {total} bytes of files, more than'
                f' CourseDirectory.max_dir_size allows ({coursedir.max_dir_size}'
                ' kB)'
            )
        files = []
        for rel, full in chosen:
            with open(full, 'rb') as handle:
                files.append(upload_file(rel, handle.read()))
            self.log.debug('Uploading %s (%d bytes)', rel, len(files[-1].content))
        return files

    def ignored_on_download(self, path: PurePosixPath) -> bool:
        """Like nbgrader's fetch: skip paths with a part in ``ignore``."""
        return any(
            fnmatch(part, pattern)
            for part in path.parts
            for pattern in self.coursedir.ignore
        )

    def decode_files(
        self,
        files: list,
        dest: str,
        *,
        only_missing: bool = False,
        skip_ignored: bool = True,
    ) -> list[str]:
        """Write ngshare's ``files`` (with content) under ``dest``.

        Returns the relative paths written. The whole tree is checked first
        (``tree.plan_tree``: paths that would leave ``dest``, a file that is
        also a folder, bad content or checksums), so a tree that is refused
        raises :class:`UnsafeTree` before anything is written; each target is
        checked again against ``dest`` as it is written (``target_inside``).
        ``OSError`` from the file system propagates: callers write into a
        ``staged`` folder, so nothing half-written is left behind.
        """
        chosen = []
        for planned in plan_tree(files):
            path = planned.path
            if skip_ignored and self.ignored_on_download(path):
                self.log.debug('Ignoring %s (CourseDirectory.ignore)', path)
                continue
            if only_missing and os.path.lexists(os.path.join(dest, *path.parts)):
                continue
            chosen.append(planned)
        if only_missing:
            # Into the student's own folder, not a staged one: decode (and
            # check) every missing file before the first is written.
            contents = {p.path: p.decode() for p in chosen}
        written = []
        for planned in chosen:
            path = planned.path
            data = contents.pop(path) if only_missing else planned.decode()
            target = target_inside(dest, path)  # before makedirs follows a link
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if only_missing:
                self.log.warning('Replacing missing file %r', str(path))
            with open(target, 'wb') as handle:
                handle.write(data)
            del data
            written.append(str(path))
        return written

    def decode_or_fail(self, files: list, dest: str, what: str, **options) -> list:
        """:meth:`decode_files`, failing the step (ExchangeError) on a tree
        that cannot be written, with the reason."""
        try:
            return self.decode_files(files, dest, **options)
        except UnsafeTree as exc:
            self.fail(f'Cannot {what}: {exc}')
        except OSError as exc:
            self.fail(f'Cannot {what}: {describe_os_error(exc, dest)}')

    @contextlib.contextmanager
    def staged(self, dest: str) -> Iterator[str]:
        """A temporary folder beside ``dest``, moved to ``dest`` on success.

        When the body fails, ``dest`` is as it was (a previous copy stays)
        and the folders made for the temporary one are removed again, so a
        submission that cannot be written leaves nothing behind.
        """
        parent = os.path.dirname(os.path.abspath(dest)) or '.'
        made = []
        folder = parent
        while not os.path.isdir(folder) and folder != os.path.dirname(folder):
            made.append(folder)
            folder = os.path.dirname(folder)
        temp = None
        try:
            os.makedirs(parent, exist_ok=True)
            temp = tempfile.mkdtemp(prefix='.ngshare-', dir=parent)
            yield temp
            old = None
            if os.path.isdir(dest):
                old = tempfile.mkdtemp(prefix='.ngshare-old-', dir=parent)
                os.rename(dest, os.path.join(old, 'previous'))
            try:
                os.rename(temp, dest)
            except OSError:
                if old is not None:
                    os.rename(os.path.join(old, 'previous'), dest)
                raise
            finally:
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
            made = []
        finally:
            if temp is not None and os.path.isdir(temp):
                shutil.rmtree(temp, ignore_errors=True)
            for folder in made:  # innermost first; only if still empty
                with contextlib.suppress(OSError):
                    os.rmdir(folder)

    # -- nbgrader's transfer steps ------------------------------------------

    def init_src(self):
        raise NotImplementedError

    def init_dest(self):
        raise NotImplementedError

    def copy_files(self):
        raise NotImplementedError

    def start(self):
        try:
            return super().start()
        finally:
            client = getattr(self, '_client', None)
            if client is not None:
                client.close()
                self._client = None
