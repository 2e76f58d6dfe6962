"""A whole nbgrader course through ngshare, driven by the real client.

The client is nbgrader 0.9 (``nbgrader`` from this interpreter's ``bin``
folder) with the exchange plugin ``ngshare_exchange`` 0.5.3 and its
``ngshare-course-management`` command (the console script its package
declares), all run as subprocesses, each user with their own HOME, working
directory and environment (``USER``, ``JUPYTERHUB_USER``,
``JUPYTERHUB_API_TOKEN``), as on a JupyterHub where every user has their
own single-user server.

nbgrader finds its configuration as the ngshare documentation installs it:
a global ``nbgrader_config.py`` (``configureExchange(c, URL)`` and
``c.CourseDirectory.course_id = '*'``) in a folder that stands for
``/etc/jupyter`` (``JUPYTER_CONFIG_PATH`` points at it), plus, for the
instructor, an ``nbgrader_config.py`` in the course directory naming the
course.

:func:`run_course` plays the course against a :class:`Deployment` (where
ngshare is, whose token each user has, where ngshare logs): the same steps
for ngshare stand-alone behind the Hub stand-in and for ngshare under a real
JupyterHub. The client exits 0 on many failures, so every step checks its
effects: files on disk in nbgrader's layout and their checksums, the
gradebook, the exported grades, and ngshare's state through its API. A
failing step names itself, the user, the last command with the tail of its
output, and the tail of ngshare's log.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
import requests
from _api import DEBUG_REASONS

__all__ = [
    'BIN',
    'CLIENTS',
    'Client',
    'Deployment',
    'check_client_installed',
    'run_course',
]

# The client's commands: beside this interpreter (a venv's bin folder).
BIN = Path(sys.executable).parent
CLIENT_INSTALL = (
    'python3 -m pip install -e ".[test]" && '
    'python3 -m pip install --no-deps ngshare-exchange==0.5.3'
)


@dataclasses.dataclass(frozen=True)
class Client:
    """An nbgrader exchange plugin the course is played with.

    ``module`` has ``configureExchange``; ``course_management`` is the
    ``module:function`` of its ``ngshare-course-management``. What differs
    between the two plugins: ``failure_status``, the exit status of an
    nbgrader command whose exchange step ngshare refused (None: any; the old
    plugin exits 0 after most failures), ``management_failure_status``
    (that of ``ngshare-course-management``), and whether ``add_instructor``
    needs ``-f/-l/-e`` (the old plugin sends no name fields without them).
    """

    name: str
    module: str
    course_management: str
    failure_status: int | None
    management_failure_status: int
    instructor_names_required: bool


#: ngshare_exchange 0.5.3, from PyPI (unmaintained).
OLD_CLIENT = Client(
    'ngshare_exchange',
    'ngshare_exchange',
    'ngshare_exchange.course_management:main',
    failure_status=None,
    management_failure_status=255,
    instructor_names_required=True,
)
#: The plugin shipped with ngshare (ngshare.exchange).
NEW_CLIENT = Client(
    'ngshare.exchange',
    'ngshare.exchange',
    'ngshare.exchange.course_management:main',
    failure_status=1,
    management_failure_status=1,
    instructor_names_required=False,
)
CLIENTS = {client.name: client for client in (OLD_CLIENT, NEW_CLIENT)}

COURSE = 'NBG101'
ASSIGNMENT = 'ps1'
NOTEBOOK = f'{ASSIGNMENT}.ipynb'
DATA_FILE = 'data/input.csv'
DATA = b'value\n1\n2\n3\n'
POINTS = 3.0
BOGUS_TOKEN = 'not-a-token-the-hub-knows'  # noqa: S105 (a test value)

COMMAND_TIMEOUT = 180
TAIL_LINES = 40

# Cell sources. The answer cell is an autograded answer ("solution") whose
# solution nbgrader removes; the test cell is worth POINTS.
ANSWER_SOURCE = textwrap.dedent(
    """\
    import csv


    def total(path):
        ### BEGIN SOLUTION
        with open(path) as handle:
            return sum(int(row['value']) for row in csv.DictReader(handle))
        ### END SOLUTION
    """
)
RIGHT_ANSWER = textwrap.dedent(
    """\
    import csv


    def total(path):
        with open(path) as handle:
            return sum(int(row['value']) for row in csv.DictReader(handle))
    """
)
WRONG_ANSWER = textwrap.dedent(
    """\
    def total(path):
        return -1
    """
)
TEST_SOURCE = f"assert total('{DATA_FILE}') == 6"


@dataclasses.dataclass
class Person:
    name: str
    first_name: str = ''
    last_name: str = ''
    email: str = ''


ADMIN_NAME = 'admin'
KEVIN = Person('kevin', 'Kevin', 'Ko', 'kevin@example.org')
ABIGAIL = Person('abigail', 'Abigail', 'Adams', 'abigail@example.org')
LAWRENCE = Person('lawrence', 'Lawrence', 'Lee', 'lawrence@example.org')
ERIC = Person('eric', 'Eric', 'Evans', 'eric@example.org')
ERIC_UPDATED = Person('eric', 'Eric', 'Evans-Smith', 'eric.evans@example.org')
GRACE = Person('grace', 'Grace', 'Hopper', 'grace@example.org')
MALLORY = Person('mallory')  # added from the CSV with blank cells, then removed
OSCAR = Person('oscar')  # never enrolled

# lawrence answers right, eric wrong, grace first wrong and then right.
ANSWERS = {
    LAWRENCE.name: [RIGHT_ANSWER],
    ERIC.name: [WRONG_ANSWER],
    GRACE.name: [WRONG_ANSWER, RIGHT_ANSWER],
}
EXPECTED_SCORE = {LAWRENCE.name: POINTS, ERIC.name: 0.0, GRACE.name: POINTS}
ALL_USERS = [
    ADMIN_NAME,
    KEVIN.name,
    ABIGAIL.name,
    LAWRENCE.name,
    ERIC.name,
    GRACE.name,
    MALLORY.name,
    OSCAR.name,
]


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


def check_client_installed(client: Client = OLD_CLIENT) -> None:
    """Fail (not skip) unless nbgrader 0.9.x and ngshare-exchange 0.5.3 are here."""
    problems = []
    wanted_versions = [('nbgrader', '0.9.')]
    if client is OLD_CLIENT:
        wanted_versions.append(('ngshare-exchange', '0.5.3'))
    for dist, wanted in wanted_versions:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            problems.append(f'{dist} is not installed')
            continue
        if not (version == wanted or version.startswith(wanted)):
            problems.append(f'{dist} {version} is installed, not {wanted}')
    nbgrader = BIN / 'nbgrader'
    if not os.access(nbgrader, os.X_OK):
        problems.append(f'no {nbgrader}')
    if problems:
        pytest.fail('; '.join(problems) + f': run `{CLIENT_INSTALL}`', pytrace=False)


def client_commands(folder: Path, client: Client = OLD_CLIENT) -> Path:
    """ngshare_exchange's own console scripts, written into ``folder``.

    The same wrapper pip writes into BIN (``from MODULE import main``) from
    the entry points the installed ngshare-exchange declares. The course
    runs these, first on PATH, rather than BIN's ``ngshare-course-management``,
    which another installed package may have replaced with a command of
    its own (the last one installed wins the name); that is reported as a
    warning.
    """
    folder.mkdir(parents=True)
    if client is not OLD_CLIENT:
        # ngshare.exchange: its command from its module, whatever BIN has
        module, attr = client.course_management.split(':')
        path = folder / 'ngshare-course-management'
        path.write_text(
            f'#!{sys.executable}\n'
            'import sys\n'
            f'from {module} import {attr}\n'
            f'sys.exit({attr}())\n'
        )
        path.chmod(0o755)
        return folder
    scripts = [
        ep
        for ep in metadata.distribution('ngshare-exchange').entry_points
        if ep.group == 'console_scripts'
    ]
    assert scripts, 'ngshare-exchange declares no console script'
    for ep in scripts:
        path = folder / ep.name
        path.write_text(
            f'#!{sys.executable}\n'
            'import sys\n'
            f'from {ep.module} import {ep.attr}\n'
            f'sys.exit({ep.attr}())\n'
        )
        path.chmod(0o755)
        installed = BIN / ep.name
        text = installed.read_text('utf-8', 'replace') if installed.exists() else ''
        if f'from {ep.module} import' not in text:
            warnings.warn(
                f"{installed} is not ngshare_exchange's {ep.name} (another "
                f'package installed a command of that name); the course runs '
                f"ngshare_exchange's own ({ep.value})",
                stacklevel=2,
            )
    return folder


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

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

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


class Course:
    def __init__(self, deployment: Deployment, root: Path):
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
        self.users = {name: User(self, name) for name in ALL_USERS}
        self.course_dir = self.users[KEVIN.name].home / COURSE
        self.course_dir.mkdir()
        (self.course_dir / 'nbgrader_config.py').write_text(
            f'c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n'
        )
        self._lock = threading.Lock()
        self.commands: list[Ran] = []
        # filled in as the course goes on
        self.released: dict[str, str] = {}
        self.submitted: dict[str, list[dict[str, str]]] = {}  # per submit
        self.timestamps: dict[str, list[str]] = {}

    def __getitem__(self, name: str) -> User:
        return self.users[name]

    def record(self, ran: Ran) -> None:
        with self._lock:
            self.commands.append(ran)

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
            frame = next(
                (f for f in reversed(where) if f.filename == __file__), where[-1]
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

    def log_count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.deployment.log_text()))

    @contextlib.contextmanager
    def expect_refusal(
        self, user: str | None, method: str, path: str, status: int = 403
    ) -> Iterator[None]:
        """ngshare logs a refusal of ``method path`` for ``user`` meanwhile.

        The access log line is ``STATUS METHOD URI (IP USER) TIMEms``,
        without USER when nobody was identified (``user=None``).
        """
        who = rf' {re.escape(user)}' if user is not None else ''
        pattern = rf'\b{status} {method} \S*/{re.escape(path)}(?:\?\S*)? \(\S+{who}\)'
        before = self.log_count(pattern)
        yield
        deadline = time.monotonic() + 5
        while self.log_count(pattern) <= before:
            assert time.monotonic() < deadline, (
                f'ngshare did not log a {status} for {method} .../{path} by {user}'
            )
            time.sleep(0.1)


# --------------------------------------------------------------------------
# helpers for the notebook, the gradebook and the feedback


def source_notebook() -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata['kernelspec'] = {
        'name': 'python3',
        'display_name': 'Python 3',
        'language': 'python',
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f'Write `total(path)`: the sum of the `value` column of `{DATA_FILE}`.'
        ),
        nbformat.v4.new_code_cell(
            ANSWER_SOURCE,
            metadata={
                'nbgrader': {
                    'grade': False,
                    'solution': True,
                    'locked': False,
                    'task': False,
                    'grade_id': 'answer',
                    'schema_version': 3,
                }
            },
        ),
        nbformat.v4.new_code_cell(
            TEST_SOURCE,
            metadata={
                'nbgrader': {
                    'grade': True,
                    'solution': False,
                    'locked': True,
                    'task': False,
                    'points': POINTS,
                    'grade_id': 'test_total',
                    'schema_version': 3,
                }
            },
        ),
    ]
    return nbformat.writes(nb)


def answer(path: Path, source: str) -> None:
    """Write ``source`` into the answer cell of the student's notebook."""
    nb = json.loads(path.read_text('utf-8'))
    cells = [
        cell
        for cell in nb['cells']
        if cell.get('metadata', {}).get('nbgrader', {}).get('grade_id') == 'answer'
    ]
    assert len(cells) == 1, f'no single answer cell in {path}'
    cells[0]['source'] = source
    path.write_text(json.dumps(nb, indent=1), 'utf-8')


def gradebook(course_dir: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f'sqlite:///{course_dir / "gradebook.db"}')


def gradebook_students(course_dir: Path) -> dict[str, tuple]:
    with gradebook(course_dir) as gb:
        return {
            s.id: (s.first_name or '', s.last_name or '', s.email or '')
            for s in gb.students
        }


def score_in(html: str) -> str | None:
    match = re.search(rf'{ASSIGNMENT} \(Score: ([0-9.]+) / ([0-9.]+)\)', html)
    return f'{match.group(1)} / {match.group(2)}' if match else None


def roster(user: User) -> dict[str, tuple]:
    body = user.api_ok('GET', 'students', COURSE)
    return {
        s['username']: (s['first_name'], s['last_name'], s['email'])
        for s in body['students']
    }


def person_tuple(person: Person) -> tuple:
    return (person.first_name, person.last_name, person.email)


def cache_dirs(user: User) -> dict[str, Path]:
    """The client's submission cache: ``{timestamp: folder}``."""
    cache = user.home / '.local' / 'share' / 'jupyter' / 'nbgrader_cache' / COURSE
    found = {}
    for path in cache.glob(f'{user.name}+{ASSIGNMENT}+*'):
        found[path.name.split('+', 2)[2]] = path
    return found


# --------------------------------------------------------------------------
# the course, step by step


def run_course(deployment: Deployment, root: Path) -> Course:
    """Play a whole course; raise :class:`StepFailed` at the first failure."""
    check_client_installed(deployment.client)
    course = Course(deployment, root)
    set_up_course(course)
    manage_roster(course)
    release_assignment(course)
    students_fetch(course)
    refusals_before_grading(course)
    students_submit(course)
    collect_and_grade(course)
    release_feedback(course)
    students_fetch_feedback(course)
    refusals_after_grading(course)
    return course


def set_up_course(course: Course) -> None:
    admin, kevin = course[course.deployment.admin], course[KEVIN.name]

    with course.step('create_course', admin):
        ran = admin.run('ngshare-course-management', 'create_course', COURSE, 'kevin')
        assert f'Successfully created {COURSE}' in ran.stdout
        assert COURSE in kevin.api_ok('GET', 'courses')['courses']
        body = admin.api_ok('GET', 'instructors', COURSE)
        assert [i['username'] for i in body['instructors']] == [KEVIN.name]

    if course.deployment.client.instructor_names_required:
        with course.step('add_instructor without -f/-l/-e (refused)', admin):
            # The client sends no name fields without -f/-l/-e; the documented
            # API answers 400 "Please supply first name", and the client exits
            # with -1 after printing the message.
            with course.expect_refusal(
                admin.name, 'POST', f'instructor/{COURSE}/abigail', 400
            ):
                ran = admin.run(
                    'ngshare-course-management',
                    'add_instructor',
                    COURSE,
                    ABIGAIL.name,
                    expect=255,
                )
            assert 'Please supply first name' in ran.stdout
            body = admin.api_ok('GET', 'instructors', COURSE)
            assert ABIGAIL.name not in [i['username'] for i in body['instructors']]
    else:
        # ngshare.exchange keeps the stored names (none for someone new).
        with course.step('add_instructor without -f/-l/-e', admin):
            ran = admin.run(
                'ngshare-course-management', 'add_instructor', COURSE, ABIGAIL.name
            )
            line = f'Successfully added {ABIGAIL.name} as an instructor'
            assert line in ran.stdout
            body = admin.api_ok('GET', 'instructors', COURSE)
            found = {
                i['username']: (i['first_name'], i['last_name'], i['email'])
                for i in body['instructors']
            }
            assert found[ABIGAIL.name] == ('', '', ''), found

    with course.step('add_instructor -f -l -e', admin):
        for person in (KEVIN, ABIGAIL):  # update kevin, add abigail
            ran = admin.run(
                'ngshare-course-management',
                'add_instructor',
                COURSE,
                person.name,
                '-f',
                person.first_name,
                '-l',
                person.last_name,
                '-e',
                person.email,
            )
            assert f'Successfully added {person.name} as an instructor' in ran.stdout
        body = admin.api_ok('GET', 'instructors', COURSE)
        found = {
            i['username']: (i['first_name'], i['last_name'], i['email'])
            for i in body['instructors']
        }
        assert found == {p.name: person_tuple(p) for p in (KEVIN, ABIGAIL)}


def manage_roster(course: Course) -> None:
    kevin = course[KEVIN.name]

    with course.step('add_student -f -l -e', kevin):
        for person in (LAWRENCE, ERIC):
            ran = kevin.run(
                'ngshare-course-management',
                'add_student',
                COURSE,
                person.name,
                '-f',
                person.first_name,
                '-l',
                person.last_name,
                '-e',
                person.email,
                cwd=course.course_dir,
            )
            assert f'Successfully added/updated {person.name}' in ran.stdout
        expected = {p.name: person_tuple(p) for p in (LAWRENCE, ERIC)}
        assert roster(kevin) == expected
        assert gradebook_students(course.course_dir) == expected

    with course.step('add_students from CSV', kevin):
        csv_path = kevin.home / 'students.csv'
        csv_path.write_text(
            'student_id,first_name,last_name,email\n'
            f'{GRACE.name},{GRACE.first_name},{GRACE.last_name},{GRACE.email}\n'
            f'{MALLORY.name},,,\n'
            f'{ERIC.name},{ERIC_UPDATED.first_name},{ERIC_UPDATED.last_name},'
            f'{ERIC_UPDATED.email}\n'
        )
        ran = kevin.run(
            'ngshare-course-management',
            'add_students',
            COURSE,
            str(csv_path),
            cwd=course.course_dir,
        )
        for name in (GRACE.name, MALLORY.name, ERIC.name):
            assert f'{name} was successfully added to {COURSE}' in ran.stdout
        expected = {
            p.name: person_tuple(p) for p in (LAWRENCE, ERIC_UPDATED, GRACE, MALLORY)
        }
        assert roster(kevin) == expected
        assert gradebook_students(course.course_dir) == expected

    with course.step('remove_students', kevin):
        kevin.run(
            'ngshare-course-management',
            'remove_students',
            COURSE,
            MALLORY.name,
            cwd=course.course_dir,
        )
        expected = {p.name: person_tuple(p) for p in (LAWRENCE, ERIC_UPDATED, GRACE)}
        assert roster(kevin) == expected
        assert gradebook_students(course.course_dir) == expected


def release_assignment(course: Course) -> None:
    kevin = course[KEVIN.name]
    source = course.course_dir / 'source' / ASSIGNMENT
    release = course.course_dir / 'release' / ASSIGNMENT

    with course.step('generate_assignment', kevin):
        (source / 'data').mkdir(parents=True)
        (source / NOTEBOOK).write_text(source_notebook(), 'utf-8')
        (source / DATA_FILE).write_bytes(DATA)
        kevin.run('nbgrader', 'generate_assignment', ASSIGNMENT, cwd=course.course_dir)
        released = checksums(release)
        assert set(released) == {NOTEBOOK, DATA_FILE}, released
        assert (release / DATA_FILE).read_bytes() == DATA
        text = (release / NOTEBOOK).read_text('utf-8')
        assert 'BEGIN SOLUTION' not in text and 'csv.DictReader' not in text
        assert 'raise NotImplementedError' in text
        course.released = released

    with course.step('release_assignment', kevin):
        kevin.run('nbgrader', 'release_assignment', ASSIGNMENT, cwd=course.course_dir)
        assert kevin.api_ok('GET', 'assignments', COURSE)['assignments'] == [ASSIGNMENT]
        body = kevin.api_ok(
            'GET', 'assignment', COURSE, ASSIGNMENT, params={'list_only': 'true'}
        )
        on_server = {f['path']: f['checksum'] for f in body['files']}
        assert on_server == course.released


def students_fetch(course: Course) -> None:
    students = [course[name] for name in ANSWERS]

    def fetch(student: User) -> None:
        ran = student.run('nbgrader', 'list')
        assert f'{COURSE} {ASSIGNMENT}' in ran.output
        student.run('nbgrader', 'fetch_assignment', ASSIGNMENT, '--course', COURSE)
        fetched = checksums(student.home / ASSIGNMENT)
        assert fetched == course.released

    course.each('list and fetch_assignment', students, fetch)


def refusals_before_grading(course: Course) -> None:
    kevin = course[KEVIN.name]

    # An unenrolled student and a removed one: nbgrader shows them nothing,
    # and ngshare refused the fetch with 403.
    def cannot_fetch(student: User) -> None:
        ran = student.run('nbgrader', 'list')
        assert f'{COURSE} {ASSIGNMENT}' not in ran.output
        assert student.api_ok('GET', 'courses')['courses'] == []
        with course.expect_refusal(
            student.name, 'GET', f'assignment/{COURSE}/{ASSIGNMENT}'
        ):
            student.run(
                'nbgrader',
                'fetch_assignment',
                ASSIGNMENT,
                '--course',
                COURSE,
                expect=course.deployment.client.failure_status,
            )
        assert not (student.home / ASSIGNMENT).exists()
        student.api_refused(
            403, 'Permission denied', 'GET', 'assignment', COURSE, ASSIGNMENT
        )

    course.each(
        'fetch_assignment refused',
        [course[OSCAR.name], course[MALLORY.name]],
        cannot_fetch,
    )

    # A bogus token: the client lists nothing, ngshare refuses it.
    lawrence = course[LAWRENCE.name]
    with course.step('bogus token', lawrence):
        with course.expect_refusal(None, 'GET', 'courses'):
            ran = lawrence.run(
                'nbgrader',
                'list',
                env=lawrence.env(JUPYTERHUB_API_TOKEN=BOGUS_TOKEN),
                expect=course.deployment.client.failure_status,
            )
        assert f'{COURSE} {ASSIGNMENT}' not in ran.output
        assert 'Invalid token' in ran.output
        lawrence.api_refused(403, 'Invalid token', 'GET', 'courses', token=BOGUS_TOKEN)
        lawrence.api_refused(
            403,
            'Invalid token',
            'POST',
            'submission',
            COURSE,
            ASSIGNMENT,
            token=BOGUS_TOKEN,
            data={'files': '[]'},
        )

    if course.deployment.hub:
        # Under the Hub the user parameter is ignored: lawrence's token with
        # user=kevin is still lawrence. The real client sends user from
        # $JUPYTERHUB_USER, so a spoofed one there changes nothing either.
        with course.step('spoofed user parameter', lawrence):
            lawrence.api_refused(
                403,
                'Permission denied',
                'GET',
                'submissions',
                COURSE,
                ASSIGNMENT,
                params={'user': KEVIN.name},
            )
            with course.expect_refusal(
                lawrence.name, 'POST', f'student/{COURSE}/oscar'
            ):
                ran = lawrence.run(
                    'ngshare-course-management',
                    'add_student',
                    COURSE,
                    OSCAR.name,
                    '-f',
                    'Oscar',
                    '-l',
                    'Spoof',
                    '-e',
                    'oscar@example.org',
                    '--no-gb',
                    env=lawrence.env(JUPYTERHUB_USER=KEVIN.name, USER=KEVIN.name),
                    expect=course.deployment.client.management_failure_status,
                )
            assert 'Permission denied' in ran.output
            assert OSCAR.name not in roster(kevin)


def students_submit(course: Course) -> None:
    kevin = course[KEVIN.name]

    def work(student: User) -> None:
        notebook = student.home / ASSIGNMENT / NOTEBOOK
        course.submitted[student.name] = []
        for source in ANSWERS[student.name]:
            answer(notebook, source)
            files = checksums(student.home / ASSIGNMENT)
            before = set(cache_dirs(student))
            student.run('nbgrader', 'submit', ASSIGNMENT, '--course', COURSE)
            ran = student.last
            new = set(cache_dirs(student)) - before
            assert len(new) == 1, f'expected one new cached submission, got {new}'
            (timestamp,) = new
            assert f'Submitted as: {COURSE} {ASSIGNMENT} {timestamp}' in ran.output
            cached = cache_dirs(student)[timestamp]
            assert (cached / 'timestamp.txt').read_text() == timestamp
            course.submitted[student.name].append(files)
            # On the server: the student sees their own submissions, the
            # instructor the files, exactly as submitted.
            body = student.api_ok(
                'GET', 'submissions', COURSE, ASSIGNMENT, student.name
            )
            stamps = [s['timestamp'] for s in body['submissions']]
            assert stamps[-1] == timestamp, stamps
            body = kevin.api_ok(
                'GET',
                'submission',
                COURSE,
                ASSIGNMENT,
                student.name,
                params={'timestamp': timestamp, 'list_only': 'true'},
            )
            assert {f['path']: f['checksum'] for f in body['files']} == files
        course.timestamps[student.name] = stamps
        assert len(stamps) == len(ANSWERS[student.name])

    course.each('edit and submit', [course[name] for name in ANSWERS], work)


def collect_and_grade(course: Course) -> None:
    kevin = course[KEVIN.name]
    lawrence = course[LAWRENCE.name]
    root = course.course_dir

    with course.step('list --inbound', kevin):
        ran = kevin.run('nbgrader', 'list', '--inbound', cwd=root)
        for name, stamps in course.timestamps.items():
            for stamp in stamps:
                line = f'{COURSE} {name} {ASSIGNMENT} {stamp} (no feedback available)'
                assert line in ran.output, line

    with course.step('collect refused to a student', lawrence):
        with course.expect_refusal(
            lawrence.name, 'GET', f'submissions/{COURSE}/{ASSIGNMENT}'
        ):
            lawrence.run(
                'nbgrader',
                'collect',
                ASSIGNMENT,
                '--course',
                COURSE,
                expect=course.deployment.client.failure_status,
            )
        assert not (lawrence.home / 'submitted').exists()

    with course.step('collect', kevin):
        kevin.run('nbgrader', 'collect', ASSIGNMENT, cwd=root)
        submitted = root / 'submitted'
        assert sorted(p.name for p in submitted.iterdir()) == sorted(ANSWERS)
        for name in ANSWERS:
            folder = submitted / name / ASSIGNMENT
            # the latest submission, with its timestamp
            latest = course.timestamps[name][-1]
            assert (folder / 'timestamp.txt').read_text().strip() == latest, name
            files = checksums(folder)
            assert files.pop('timestamp.txt')
            assert files == course.submitted[name][-1], name

    with course.step('autograde', kevin):
        kevin.run('nbgrader', 'autograde', ASSIGNMENT, cwd=root)
        for name in ANSWERS:
            assert (root / 'autograded' / name / ASSIGNMENT / NOTEBOOK).is_file()
            assert (root / 'autograded' / name / ASSIGNMENT / DATA_FILE).is_file()
        with gradebook(root) as gb:
            for name, score in EXPECTED_SCORE.items():
                submission = gb.find_submission(ASSIGNMENT, name)
                assert (name, submission.score, submission.max_score) == (
                    name,
                    score,
                    POINTS,
                )

    with course.step('export', kevin):
        kevin.run('nbgrader', 'export', cwd=root)
        with open(root / 'grades.csv', newline='') as handle:
            rows = {row['student_id']: row for row in csv.DictReader(handle)}
        for name, score in EXPECTED_SCORE.items():
            row = rows[name]
            assert row['assignment'] == ASSIGNMENT
            assert (name, float(row['score']), float(row['max_score'])) == (
                name,
                score,
                POINTS,
            )
            from nbgrader.utils import parse_utc

            assert parse_utc(row['timestamp']) == parse_utc(
                course.timestamps[name][-1]
            ), (name, row['timestamp'])


def release_feedback(course: Course) -> None:
    kevin = course[KEVIN.name]
    root = course.course_dir

    with course.step('generate_feedback', kevin):
        kevin.run('nbgrader', 'generate_feedback', ASSIGNMENT, cwd=root)
        for name, score in EXPECTED_SCORE.items():
            html = (
                root / 'feedback' / name / ASSIGNMENT / f'{ASSIGNMENT}.html'
            ).read_text('utf-8')
            assert score_in(html) == f'{score} / {POINTS}', name

    with course.step('release_feedback', kevin):
        kevin.run('nbgrader', 'release_feedback', ASSIGNMENT, cwd=root)
        for name in ANSWERS:
            local = md5(root / 'feedback' / name / ASSIGNMENT / f'{ASSIGNMENT}.html')
            *earlier, latest = course.timestamps[name]
            body = kevin.api_ok(
                'GET',
                'feedback',
                COURSE,
                ASSIGNMENT,
                name,
                params={'timestamp': latest, 'list_only': 'true'},
            )
            assert body['files'] == [{'path': f'{ASSIGNMENT}.html', 'checksum': local}]
            for stamp in earlier:
                body = kevin.api_ok(
                    'GET',
                    'feedback',
                    COURSE,
                    ASSIGNMENT,
                    name,
                    params={'timestamp': stamp, 'list_only': 'true'},
                )
                assert body['files'] == [], (name, stamp)
        ran = kevin.run('nbgrader', 'list', '--inbound', cwd=root)
        for name, stamps in course.timestamps.items():
            *earlier, latest = stamps
            ready = (
                f'{COURSE} {name} {ASSIGNMENT} {latest} (feedback ready to be fetched)'
            )
            assert ready in ran.output, ready
            for stamp in earlier:
                none = f'{COURSE} {name} {ASSIGNMENT} {stamp} (no feedback available)'
                assert none in ran.output, none


def students_fetch_feedback(course: Course) -> None:
    root = course.course_dir

    def fetch(student: User) -> None:
        student.run('nbgrader', 'fetch_feedback', ASSIGNMENT, '--course', COURSE)
        feedback = student.home / ASSIGNMENT / 'feedback'
        *earlier, latest = course.timestamps[student.name]
        html_path = feedback / latest / f'{ASSIGNMENT}.html'
        assert html_path.is_file(), sorted(str(p) for p in feedback.rglob('*'))
        instructor_copy = root / 'feedback' / student.name / ASSIGNMENT
        assert md5(html_path) == md5(instructor_copy / f'{ASSIGNMENT}.html')
        score = EXPECTED_SCORE[student.name]
        assert score_in(html_path.read_text('utf-8')) == f'{score} / {POINTS}'
        # Feedback only for the latest submission: nothing for earlier ones.
        found = sorted(
            p.relative_to(feedback).as_posix() for p in feedback.rglob('*.html')
        )
        assert found == [f'{latest}/{ASSIGNMENT}.html'], found
        ran = student.run('nbgrader', 'list', '--cached')
        line = (
            f'{COURSE} {student.name} {ASSIGNMENT} {latest} (feedback already fetched)'
        )
        assert line in ran.output, line

    course.each('fetch_feedback', [course[name] for name in ANSWERS], fetch)


def refusals_after_grading(course: Course) -> None:
    lawrence = course[LAWRENCE.name]
    eric_stamp = course.timestamps[ERIC.name][-1]

    with course.step("reading another student's work", lawrence):
        for segments, params in (
            (('submissions', COURSE, ASSIGNMENT), None),
            (('submissions', COURSE, ASSIGNMENT, ERIC.name), None),
            (('submission', COURSE, ASSIGNMENT, ERIC.name), None),
            (('submission', COURSE, ASSIGNMENT, ERIC.name), {'timestamp': eric_stamp}),
            (('feedback', COURSE, ASSIGNMENT, ERIC.name), {'timestamp': eric_stamp}),
        ):
            lawrence.api_refused(
                403, 'Permission denied', 'GET', *segments, params=params
            )

    mallory = course[MALLORY.name]
    with course.step('removed student after grading', mallory):
        mallory.api_refused(
            403, 'Permission denied', 'GET', 'assignment', COURSE, ASSIGNMENT
        )
        mallory.api_refused(
            403,
            'Permission denied',
            'POST',
            'submission',
            COURSE,
            ASSIGNMENT,
            data={'files': '[]'},
        )
