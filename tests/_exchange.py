"""Helpers for the tests of ngshare's nbgrader exchange plugin.

The plugin's classes run in this process, constructed as nbgrader's apps
construct them (a traitlets ``Config``, a ``CourseDirectory``, an
``Authenticator``), against a real ngshare on loopback; the nbgrader and
``ngshare-course-management`` commands run as subprocesses. Every user has
their own folder (course directory or assignment folder), cache and
environment (``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_USER``, ``USER``).

Fixtures: ``exchange_site`` (a stand-alone ngshare resolving tokens through
the Hub stand-in, with course ``NBG101``: instructor ``kevin``, students
``lawrence`` and ``eric``) and ``exchange_site_hub`` (the same under the Hub
stand-in, where ngshare ignores ``user``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from _servers import REPO_ROOT, NgshareServer, token_for

__all__ = [
    'ASSIGNMENT',
    'COURSE',
    'Person',
    'Site',
    'exchange_site',
    'exchange_site_hub',
    'make_notebook',
    'run_cli',
    'run_course_management',
]

COURSE = 'NBG101'
ASSIGNMENT = 'ps1'
BIN = Path(sys.executable).parent


def make_notebook(path: Path, text: str = 'hello') -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb), 'utf-8')


@dataclasses.dataclass
class Site:
    """An ngshare server and the people using it (``site['kevin']``)."""

    server: NgshareServer
    root: Path
    url: str

    def __post_init__(self):
        self.people: dict[str, Person] = {}

    def __getitem__(self, name: str) -> Person:
        if name not in self.people:
            self.people[name] = Person(self, name)
        return self.people[name]

    def api(self, method: str, *segments: str, as_user: str = 'root', **kwargs):
        """ngshare's API directly, as ``as_user``; returns the JSON body."""
        resp = self.server.request(method, segments, user=as_user, **kwargs)
        return resp.json()


class Person:
    """One user: a home folder, a cache, an environment."""

    def __init__(self, site: Site, name: str, token: str | None = None):
        self.site = site
        self.name = name
        self.token = token if token is not None else token_for(name)
        self.home = site.root / 'home' / name
        self.home.mkdir(parents=True, exist_ok=True)
        self.cache = self.home / '.cache-nbgrader'

    @property
    def course_dir(self) -> Path:
        return self.home / COURSE

    def environ(self, **overrides: str | None) -> dict[str, str | None]:
        env = {
            'JUPYTERHUB_API_TOKEN': self.token,
            'JUPYTERHUB_USER': self.name,
            'USER': self.name,
            'KUBERNETES_SERVICE_HOST': None,
            'PROXY_PUBLIC_SERVICE_HOST': None,
            # nbgrader's Gradebook runs `alembic`, from this interpreter's bin
            'PATH': os.pathsep.join([str(BIN), os.environ.get('PATH', os.defpath)]),
        }
        env.update(overrides)
        return env

    @contextlib.contextmanager
    def acting(self, **overrides: str | None) -> Iterator[None]:
        """This user's environment variables, for in-process exchange calls."""
        saved = {key: os.environ.get(key) for key in self.environ(**overrides)}
        try:
            for key, value in self.environ(**overrides).items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def config(self, *, url: str | None = None, **settings):
        """An nbgrader ``Config`` for this user, as nbgrader_config.py + CLI.

        ``settings`` are ``'Section.trait': value`` pairs given as keyword
        arguments with ``__`` for the dot, e.g. ``CourseDirectory__ignore``.
        """
        from traitlets.config import Config

        from ngshare.exchange import configure_exchange

        config = Config()
        configure_exchange(config, self.site.url if url is None else url)
        config.CourseDirectory.root = str(self.course_dir)
        config.CourseDirectory.course_id = COURSE
        config.Exchange.assignment_dir = str(self.home)
        config.Exchange.cache = str(self.cache)
        config.Exchange.retry_delay = 0.05
        for key, value in settings.items():
            section, trait = key.split('__')
            setattr(getattr(config, section), trait, value)
        return config

    def exchange(self, kind: str, *, env: dict | None = None, **settings):
        """Build the exchange class ``kind`` ('list', 'submit', ...) as nbgrader
        does, run ``start()`` in this user's environment, return its result.
        """
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.exchange import ExchangeFactory

        config = self.config(**settings)
        factory = ExchangeFactory(config=config)
        coursedir = CourseDirectory(config=config)
        authenticator = Authenticator(config=config)
        maker = {
            'list': factory.List,
            'release_assignment': factory.ReleaseAssignment,
            'fetch_assignment': factory.FetchAssignment,
            'submit': factory.Submit,
            'collect': factory.Collect,
            'release_feedback': factory.ReleaseFeedback,
            'fetch_feedback': factory.FetchFeedback,
        }[kind]
        instance = maker(coursedir=coursedir, authenticator=authenticator)
        with self.acting(**(env or {})):
            return instance.start()

    # -- files of the course -------------------------------------------------

    def write_release(self, assignment: str = ASSIGNMENT, **extra: bytes) -> Path:
        """``release/<assignment>`` with ``<assignment>.ipynb`` and ``extra``
        files (keyword names with ``__`` for ``/``)."""
        release = self.course_dir / 'release' / assignment
        make_notebook(release / f'{assignment}.ipynb', f'{assignment} released')
        for name, content in extra.items():
            target = release / name.replace('__', '/')
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return release

    def write_feedback(
        self, student: str, timestamp: str, html: str, assignment: str = ASSIGNMENT
    ) -> Path:
        folder = self.course_dir / 'feedback' / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'{assignment}.html').write_text(html, 'utf-8')
        (folder / 'timestamp.txt').write_text(timestamp)
        return folder

    def cached(self, assignment: str = ASSIGNMENT) -> dict[str, Path]:
        """``{timestamp: folder}`` of this user's cached submissions."""
        found = {}
        for path in (self.cache / COURSE).glob(f'{self.name}+{assignment}+*'):
            found[path.name.split('+', 2)[2]] = path
        return found


def cli_environment(
    person: Person,
    *,
    url: str | None = None,
    env: dict | None = None,
    nbgrader_config: str | None = None,
) -> dict[str, str]:
    """The environment of a command run by ``person`` (see :func:`run_cli`)."""
    etc = person.home / '.etc-jupyter'
    etc.mkdir(exist_ok=True)
    (etc / 'nbgrader_config.py').write_text(
        nbgrader_config
        or textwrap.dedent(
            f"""\
            from ngshare.exchange import configureExchange

            c = get_config()
            configureExchange(c, {person.site.url if url is None else url!r})
            c.CourseDirectory.course_id = '*'
            c.Exchange.cache = {str(person.cache)!r}
            c.Exchange.retry_delay = 0.05
            """
        )
    )
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(('JUPYTERHUB_', 'JUPYTER_', 'NGSHARE_'))
        and key not in ('KUBERNETES_SERVICE_HOST', 'PROXY_PUBLIC_SERVICE_HOST')
    }
    base.update(
        {
            'HOME': str(person.home),
            'JUPYTER_CONFIG_PATH': str(etc),
            'PYTHONPATH': str(REPO_ROOT),
            'PYTHONDONTWRITEBYTECODE': '1',
        }
    )
    for key, value in person.environ(**(env or {})).items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def run_cli(
    person: Person,
    *argv: str,
    cwd: Path | None = None,
    url: str | None = None,
    env: dict | None = None,
    nbgrader_config: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run ``nbgrader ...`` or ``ngshare-course-management ...`` as ``person``.

    The global nbgrader_config.py (``configureExchange`` with the site's URL,
    or ``url``) is in a folder on ``JUPYTER_CONFIG_PATH``; the command runs in
    ``cwd`` (default: the person's home). ``ngshare-course-management`` runs
    as ``python -m ngshare.exchange.course_management`` (the old client
    installs a command of the same name). ``nbgrader_config`` replaces the
    whole global configuration file.
    """
    environment = cli_environment(
        person, url=url, env=env, nbgrader_config=nbgrader_config
    )
    if argv[0] == 'ngshare-course-management':
        command = [sys.executable, '-m', 'ngshare.exchange.course_management']
    else:
        command = [str(BIN / argv[0])]
    return subprocess.run(
        [*command, *argv[1:]],
        cwd=cwd or person.home,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_course_management(
    person: Person,
    *argv: str,
    cwd: Path | None = None,
    url: str | None = None,
    env: dict | None = None,
    nbgrader_config: str | None = None,
) -> subprocess.CompletedProcess:
    """``ngshare-course-management argv`` in this process (``main(argv)``),
    in the environment and folder :func:`run_cli` would use: much faster than
    a new interpreter importing nbgrader each time.
    """
    from ngshare.exchange.course_management import main

    environment = cli_environment(
        person, url=url, env=env, nbgrader_config=nbgrader_config
    )
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(environment)
        os.chdir(cwd or person.home)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(argv))
            except SystemExit as exc:  # argparse: usage, --help, --version
                status = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(
        ['ngshare-course-management', *argv], status, out.getvalue(), err.getvalue()
    )


def _site(start_ngshare, hub, tmp_path, *, hub_mode: bool) -> Site:
    if hub_mode:
        server = start_ngshare(hub_mode=True, hub=hub, admins='root')
    else:
        server = start_ngshare(
            hub_mode=False,
            hub=hub,
            admins='root',
            args=['--jupyterhub_api_url', hub.api_url],
        )
    site = Site(server, tmp_path / 'site', server.api.rstrip('/'))
    assert site.api(
        'POST', 'course', COURSE, data={'instructors': json.dumps(['kevin'])}
    )['success']
    body = site.api(
        'POST',
        'students',
        COURSE,
        as_user='kevin',
        data={
            'students': json.dumps(
                [
                    {'username': n, 'first_name': n, 'last_name': 'S', 'email': ''}
                    for n in ('lawrence', 'eric')
                ]
            )
        },
    )
    assert body['success'] and all(s['success'] for s in body['status']), body
    site['kevin'].course_dir.mkdir()
    return site


@pytest.fixture
def exchange_site(start_ngshare, hub, tmp_path) -> Site:
    """Stand-alone ngshare (``user`` on writes, tokens through the stand-in)."""
    return _site(start_ngshare, hub, tmp_path, hub_mode=False)


@pytest.fixture
def exchange_site_hub(start_ngshare, hub, tmp_path) -> Site:
    """ngshare under the Hub stand-in (``user`` ignored, tokens only)."""
    return _site(start_ngshare, hub, tmp_path, hub_mode=True)
