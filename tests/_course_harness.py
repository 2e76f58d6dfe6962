"""The harness that plays an nbgrader course through ngshare, as real users.

The client is nbgrader 0.9 (``nbgrader`` from this interpreter's ``bin``
folder) with an exchange plugin (``ngshare_exchange`` 0.5.3 or
``ngshare.exchange``) and its ``ngshare-course-management`` command, all run
as subprocesses, each user with their own HOME, working directory and
environment (``USER``, ``JUPYTERHUB_USER``, ``JUPYTERHUB_API_TOKEN``), as on
a JupyterHub where every user has their own single-user server.

nbgrader finds its configuration as the ngshare documentation installs it:
a global ``nbgrader_config.py`` (``configureExchange(c, URL)`` and
``c.CourseDirectory.course_id = '*'``) in a folder that stands for
``/etc/jupyter`` (``JUPYTER_CONFIG_PATH`` points at it), plus, for the
instructor, an ``nbgrader_config.py`` in the course directory naming the
course.

This module knows nothing of the course played (that is
:mod:`_course_scenario`) nor of the plugins' differences (that is
:mod:`_course_clients`): a :class:`Deployment` says where ngshare is and
whose token each user has; a :class:`Course` holds the users, runs their
commands, talks to ngshare's API with their tokens, and turns any failure
into one that names the phase, the step, the user, the last command with the
tail of its output, and the tail of ngshare's log. Checks go through what a
client sees (its output, the API's answers), never through ngshare's log
format: the log tail is there for the reader only.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import os
import subprocess
import textwrap
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
import requests
from _api import DEBUG_REASONS
from _course_clients import BIN, OLD_CLIENT, Client, client_commands

__all__ = [
    'ADMIN_NAME',
    'Course',
    'Deployment',
    'PhaseFailed',
    'StepFailed',
    'User',
    'checksums',
    'md5',
]

ADMIN_NAME = 'admin'
COMMAND_TIMEOUT = 180
TAIL_LINES = 40


@dataclasses.dataclass
class Deployment:
    """Where ngshare runs for the course, and how users reach it.

    ``url`` is what ``nbgrader_config.py`` passes to ``configureExchange``
    (no trailing slash). ``token(name)`` is the user's
    ``JUPYTERHUB_API_TOKEN``. ``log_text()`` is everything ngshare logged so
    far. ``admin`` is an ngshare admin (``--admins``). ``hub`` tells whether
    ngshare runs under JupyterHub, where the ``user`` parameter is ignored
    (stand-alone ngshare trusts it, by design).
    """

    name: str
    url: str
    token: Callable[[str], str]
    log_text: Callable[[], str]
    admin: str = ADMIN_NAME
    hub: bool = False
    client: Client = OLD_CLIENT
    debug: bool = False  # ngshare's --debug: refusals name their reason


# --------------------------------------------------------------------------
# running commands, with reports that name the step and the user


class StepFailed(AssertionError):
    pass


@dataclasses.dataclass
class Ran:
    user: str
    argv: list[str]
    cwd: Path
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    # time.monotonic() when it started: which commands ran before which
    # (one ended before the other started), for the history's order
    started: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def ended(self) -> float:
        return self.started + self.seconds

    def before(self, other: Ran) -> bool:
        """Whether this command ended before ``other`` started."""
        return self.ended < other.started

    def describe(self) -> str:
        return (
            f'command (as {self.user}, in {self.cwd}): {" ".join(self.argv)}\n'
            f'exit status {self.returncode} after {self.seconds:.1f}s\n'
            f'--- stdout (tail) ---\n{tail(self.stdout)}\n'
            f'--- stderr (tail) ---\n{tail(self.stderr)}'
        )


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return '\n'.join(text.rstrip('\n').splitlines()[-lines:])


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def checksums(folder: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """``{relative posix path: md5}`` of every file under ``folder``."""
    skip = set(skip)
    return {
        path.relative_to(folder).as_posix(): md5(path)
        for path in sorted(folder.rglob('*'))
        if path.is_file() and path.relative_to(folder).parts[0] not in skip
    }


class User:
    """One person with their own HOME, environment and last command."""

    def __init__(self, course: Course, name: str):
        self.course = course
        self.name = name
        self.home = course.root / 'home' / name
        self.home.mkdir(parents=True)
        self.last: Ran | None = None

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(('JUPYTERHUB_', 'JUPYTER_', 'NGSHARE_'))
            and key not in ('PYTHONPATH', 'VIRTUAL_ENV', 'USER', 'LOGNAME', 'HOME')
        }
        env.update(
            {
                'HOME': str(self.home),
                'USER': self.name,
                'LOGNAME': self.name,
                'JUPYTERHUB_USER': self.name,
                'JUPYTERHUB_API_TOKEN': self.course.deployment.token(self.name),
                'JUPYTER_CONFIG_PATH': str(self.course.global_config),
                'PATH': os.pathsep.join(
                    [str(self.course.bin), str(BIN), env.get('PATH', os.defpath)]
                ),
                'PYTHONUNBUFFERED': '1',
                'PYTHONDONTWRITEBYTECODE': '1',
            }
        )
        env.update(overrides)
        return env

    def run(
        self,
        *argv: str,
        cwd: Path | None = None,
        expect: int | None = 0,
        env: dict[str, str] | None = None,
    ) -> Ran:
        """Run a client command; fail unless it exits ``expect``.

        ``nbgrader`` from BIN, ngshare_exchange's commands from the course's
        own bin folder (see :func:`client_commands`).
        """
        cwd = cwd or self.home
        program = self.course.bin / argv[0]
        if not program.exists():
            program = BIN / argv[0]
        command = [str(program), *argv[1:]]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=env or self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors='replace',
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            returncode = None
            stdout = _text(exc.stdout) + f'\n[timed out after {COMMAND_TIMEOUT}s]'
            stderr = _text(exc.stderr)
        self.last = Ran(
            self.name,
            list(argv),
            cwd,
            returncode,
            stdout,
            stderr,
            time.monotonic() - started,
            started,
        )
        self.course.record(self.last)
        if returncode is None or (expect is not None and returncode != expect):
            raise AssertionError(f'exit status {returncode}, expected {expect}')
        return self.last

    # ngshare's API, directly, with this user's token (or another)

    def api(
        self,
        method: str,
        *segments: str,
        token: str | None = None,
        params: dict | None = None,
        data: dict | None = None,
    ) -> requests.Response:
        token = token if token is not None else self.course.deployment.token(self.name)
        url = self.course.deployment.url + '/' + quoted(*segments)
        return requests.request(
            method,
            url,
            headers={'Authorization': f'token {token}'},
            params=params,
            data=data,
            allow_redirects=False,
            timeout=30,
        )

    def api_ok(self, method: str, *segments: str, **kwargs) -> dict:
        resp = self.api(method, *segments, **kwargs)
        body = _json(resp)
        assert resp.status_code == 200 and body.get('success') is True, describe(resp)
        return body

    def api_refused(
        self, status: int, message: str, method: str, *segments: str, **kwargs
    ) -> None:
        resp = self.api(method, *segments, **kwargs)
        messages = [message]
        if message == 'Permission denied' and self.course.deployment.debug:
            messages = [f'{message} ({reason})' for reason in DEBUG_REASONS]
        assert resp.status_code == status and _json(resp) in [
            {'success': False, 'message': text} for text in messages
        ], f'expected {status} {messages!r}: {describe(resp)}'


def _text(value) -> str:
    if value is None:
        return ''
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return value


def _json(resp: requests.Response) -> dict:
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f'answer is not JSON: {describe(resp)}') from None
    assert isinstance(body, dict), describe(resp)
    return body


def quoted(*segments: str) -> str:
    return '/'.join(urllib.parse.quote(segment, safe='') for segment in segments)


def describe(resp: requests.Response) -> str:
    return (
        f'{resp.request.method} {resp.url} -> {resp.status_code} '
        f'{resp.headers.get("Content-Type")}: {resp.text[:1000]}'
    )


# --------------------------------------------------------------------------
# the course


class PhaseFailed(AssertionError):
    """A phase of the course failed; its message names the phase first."""


class Course:
    """The users of one course on one deployment, and what happened so far.

    ``users`` are the names of everyone who takes part; ``instructor`` gets
    the course directory (``course_dir``, with an ``nbgrader_config.py``
    naming ``course_id``). ``released``, ``submitted`` and ``timestamps``
    are filled in by the phases as the course goes on.
    """

    def __init__(
        self,
        deployment: Deployment,
        root: Path,
        *,
        users: Iterable[str],
        course_id: str,
        instructor: str,
    ):
        self.deployment = deployment
        self.root = root
        self.bin = client_commands(root / 'bin', deployment.client)
        self.global_config = root / 'etc-jupyter'
        self.global_config.mkdir(parents=True)
        (self.global_config / 'nbgrader_config.py').write_text(
            textwrap.dedent(
                f"""\
                from {deployment.client.module} import configureExchange

                c = get_config()
                configureExchange(c, {deployment.url!r})
                c.CourseDirectory.course_id = '*'
                """
            )
        )
        self.users = {name: User(self, name) for name in users}
        self.course_dir = self.users[instructor].home / course_id
        self.course_dir.mkdir()
        (self.course_dir / 'nbgrader_config.py').write_text(
            f'c = get_config()\nc.CourseDirectory.course_id = {course_id!r}\n'
        )
        self._lock = threading.Lock()
        self.commands: list[Ran] = []
        self.passed: list[str] = []  # the phases played to the end
        self.failed: str | None = None  # the phase that failed, if one did
        # filled in as the course goes on
        self.released: dict[str, str] = {}
        self.submitted: dict[str, list[dict[str, str]]] = {}  # per submit
        self.timestamps: dict[str, list[str]] = {}

    def __getitem__(self, name: str) -> User:
        return self.users[name]

    def record(self, ran: Ran) -> None:
        with self._lock:
            self.commands.append(ran)

    def play(
        self,
        phases: Iterable[tuple[str, Callable[[Course], None]]],
        until: str | None = None,
    ) -> None:
        """Play ``phases`` in order, up to ``until`` (a title; None: all).

        Phases played already are not played again, so one test per phase
        can call this in turn, and a test run alone plays the phases before
        its own first. A failure names its phase (number and title) and the
        phases that passed before it; after one, no phase is played again
        (each builds on the ones before): the tests of the later ones skip,
        naming the phase that failed.
        """
        phases = list(phases)
        titles = [title for title, _ in phases]
        last = titles.index(until) if until is not None else len(phases) - 1
        if self.failed is not None:
            pytest.skip(f'not played: {self.failed} failed')
        for number, (title, phase) in enumerate(phases[: last + 1], 1):
            if title in self.passed:
                continue
            label = f'phase {number}/{len(phases)} {title!r}'
            try:
                phase(self)
            except BaseException as exc:
                self.failed = label  # even on a timeout: never resume midway
                if not isinstance(exc, Exception):
                    raise
                done = ', '.join(repr(p) for p in self.passed) or 'none'
                raise PhaseFailed(
                    f'{label} failed ({self.deployment.name}, '
                    f'{self.deployment.client.name}; passed before it: {done})'
                    f'\n{exc}'
                ) from None
            self.passed.append(title)

    @contextlib.contextmanager
    def step(self, name: str, user: User) -> Iterator[None]:
        """Turn any failure inside into one naming the step and the user."""
        try:
            yield
        except StepFailed:
            raise
        except Exception as exc:
            detail = ''.join(traceback.format_exception_only(type(exc), exc)).strip()
            where = traceback.extract_tb(exc.__traceback__)
            # the line of the scenario that failed: not in the harness's
            # helpers nor in a library they called
            here = Path(__file__)
            frame = next(
                (
                    f
                    for f in reversed(where)
                    if Path(f.filename).parent == here.parent
                    and Path(f.filename) != here
                ),
                where[-1],
            )
            last = user.last.describe() if user.last else '(no command run yet)'
            raise StepFailed(
                f'step {name!r}, user {user.name!r} ({self.deployment.name}): '
                f'{detail}\n  at {Path(frame.filename).name}:{frame.lineno}: '
                f'{frame.line}\n--- last command of {user.name} ---\n{last}\n'
                f'--- ngshare log (tail) ---\n{tail(self.deployment.log_text())}'
            ) from None

    def each(self, name: str, users: Iterable[User], action) -> None:
        """Run ``action(user)`` for several users at once, each in a step."""

        def one(user: User) -> None:
            with self.step(name, user):
                action(user)

        users = list(users)
        with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
            futures = [pool.submit(one, user) for user in users]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise StepFailed('\n\n'.join(str(error) for error in errors))

    def assert_client_refused(
        self, ran: Ran, status: int, path: str, message: str
    ) -> None:
        """The client's output shows ngshare's refusal of its request.

        What the user was told: ngshare's ``message`` (in debug mode
        "Permission denied (REASON)"), after ``: `` as both plugins print
        it; ngshare_exchange 0.5.3 also names the status and the endpoint
        (``/PATH``, without the query).
        """
        texts = [message]
        if message == 'Permission denied' and self.deployment.debug:
            texts = [f'{message} ({reason})' for reason in DEBUG_REASONS]
        if self.deployment.client is OLD_CLIENT:
            assert f'invalid status code {status}.' in ran.output
            wanted = [f'ngshare endpoint /{path} returned failure: {t}' for t in texts]
        else:
            wanted = [f': {t}' for t in texts]
        assert any(w in ran.output for w in wanted), (
            f'the client did not show the refusal {status} {texts!r}'
        )
