"""The base of the ngshare exchange classes: configuration, files, errors."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
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

__all__ = ['Exchange', 'checksum_of']

T = TypeVar('T')


def checksum_of(path: str | os.PathLike) -> str:
    """md5 of a file, as ngshare reports checksums."""
    digest = hashlib.md5()  # noqa: S324 (ngshare's checksums are md5)
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_relative(path: str) -> PurePosixPath | None:
    """``path`` as a relative path inside a folder, or None if it is not one."""
    if not isinstance(path, str) or not path or '\\' in path or '\0' in path:
        return None
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ('', '.', '..') for part in pure.parts):
        return None
    return pure


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

    def encode_tree(self, root: str, what: str) -> str:
        """The files under ``root`` as ngshare's directory tree (JSON text).

        Honours ``CourseDirectory.ignore``, ``include`` and
        ``max_file_size`` with nbgrader's own filter (ignored files are
        logged, too large ones with a warning) and fails when what is left
        is larger than ``CourseDirectory.max_dir_size``.
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
                content = handle.read()
            files.append(
                {
                    'path': rel,
                    'content': base64.b64encode(content).decode('ascii'),
                    'checksum': hashlib.md5(content).hexdigest(),  # noqa: S324
                }
            )
            self.log.debug('Uploading %s (%d bytes)', rel, len(content))
        return json.dumps(files)

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
        what: str,
        *,
        only_missing: bool = False,
        skip_ignored: bool = True,
    ) -> list[str]:
        """Write ngshare's ``files`` (with content) under ``dest``.

        Returns the relative paths written. Paths that would leave ``dest``
        make the whole operation fail before anything is written.
        """
        plan = []
        for entry in files if isinstance(files, list) else [None]:
            path = (
                _safe_relative(entry.get('path')) if isinstance(entry, dict) else None
            )
            content = entry.get('content') if isinstance(entry, dict) else None
            if path is None or not isinstance(content, str):
                self.fail(f'Cannot {what}: ngshare sent a malformed file entry')
            plan.append((path, content))
        written = []
        for path, content in plan:
            if skip_ignored and self.ignored_on_download(path):
                self.log.debug('Ignoring %s (CourseDirectory.ignore)', path)
                continue
            target = os.path.join(dest, *path.parts)
            if only_missing and os.path.exists(target):
                continue
            try:
                data = base64.b64decode(content)
            except ValueError:
                self.fail(f'Cannot {what}: ngshare sent undecodable content')
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if only_missing:
                self.log.warning('Replacing missing file %r', str(path))
            with open(target, 'wb') as handle:
                handle.write(data)
            written.append(str(path))
        return written

    @contextlib.contextmanager
    def staged(self, dest: str) -> Iterator[str]:
        """A temporary folder beside ``dest``, moved to ``dest`` on success.

        Nothing is left at ``dest`` when the body fails.
        """
        parent = os.path.dirname(os.path.abspath(dest)) or '.'
        os.makedirs(parent, exist_ok=True)
        temp = tempfile.mkdtemp(prefix='.ngshare-', dir=parent)
        try:
            yield temp
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            os.rename(temp, dest)
        finally:
            if os.path.isdir(temp):
                shutil.rmtree(temp, ignore_errors=True)

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
