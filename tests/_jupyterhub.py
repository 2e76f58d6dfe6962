"""A real JupyterHub, started from the example administrators copy.

``real_hub`` (module scope) runs ``python -m jupyterhub`` as a subprocess in
a temporary folder, with the real configurable-http-proxy (from
``node_modules/``, installed by ``npm ci``) and ngshare as a Hub-managed
service. Its configuration file is a small overlay that loads
``testing/install_jhmanaged/jupyterhub_config.py`` with ``load_subconfig``
and then changes only what a test run must change:

* the service command (the example's ``sys.executable``: this
  interpreter, so ngshare runs in the test environment) gets ``--database``
  / ``--storage`` in the temporary folder appended (the example's
  ``--admins admin,admin2`` stays: the tests sign in as ``admin``);
* the service ``url`` gets a free port; the Hub, the proxy and its API get
  free loopback ports; the Hub's database and cookie secret live in the
  temporary folder;
* the ``dummy`` authenticator with a password;
* one more service, ``ngshare-tests``, whose token (role scopes
  ``admin:users``, ``tokens`` and ``servers``) lets the tests create users,
  their tokens and their servers through the Hub's REST API;
* for the token tests: an OAuth service ``other-svc`` (no process; its
  ``oauth_redirect_uri`` is under the proxy, ``oauth_no_confirm``; the
  ``user`` role also gets ``access:services!service=other-svc`` so users
  may authorize it), a token-only service ``admin2`` (named like an
  ngshare admin of the example), and single-user servers spawned by
  ``SimpleLocalProcessSpawner`` running :mod:`_fake_singleuser`, which
  writes the ``$JUPYTERHUB_API_TOKEN`` the Hub gave it to
  ``homes/NAME/api_token``;
* ``RealHub(workdir, ngshare_args=[...], server_token_scopes=[...])``
  appends flags to ngshare's command and sets
  ``c.Spawner.server_token_scopes``.

Everything else (``oauth_no_confirm``, the ``user`` role with
``access:services!service=ngshare``) is the example's own, so the tests
fail if the example stops working.
"""

from __future__ import annotations

import contextlib
import os
import pprint
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from _components import unavailable
from _servers import REPO_ROOT, free_port, ngshare_env

__all__ = [
    'EXAMPLE_CONFIG',
    'HUB_ON_LOOPBACK',
    'HUB_PASSWORD',
    'RealHub',
    'browser_login',
    'real_hub',
]

EXAMPLE_CONFIG = REPO_ROOT / 'testing' / 'install_jhmanaged' / 'jupyterhub_config.py'
HUB_PASSWORD = 'ngshare-test-password'  # noqa: S105 (a test value)
TEST_SERVICE = 'ngshare-tests'
FAKE_SERVER = Path(__file__).resolve().parent / '_fake_singleuser.py'

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
POLL_INTERVAL = 0.2

#: The Hub, its proxy and their files on loopback ports and in the test's
#: folder (``SETTINGS`` as every overlay writes it): the part of a test
#: Hub's configuration that every real-Hub test shares.
HUB_ON_LOOPBACK = """\
c.JupyterHub.ip = '127.0.0.1'
c.JupyterHub.port = SETTINGS['proxy_port']
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = SETTINGS['hub_port']
c.JupyterHub.db_url = SETTINGS['hub_database']
c.JupyterHub.cookie_secret_file = SETTINGS['cookie_secret_file']
c.ConfigurableHTTPProxy.command = [SETTINGS['proxy']]
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:%d' % SETTINGS['proxy_api_port']
c.ConfigurableHTTPProxy.pid_file = SETTINGS['proxy_pid_file']
"""

OVERLAY = (
    '''\
"""Test overlay: the example configuration, with test ports and paths."""

import sys

from traitlets.config import LazyConfigValue

SETTINGS = {settings}

c = get_config()  # noqa: F821
load_subconfig(SETTINGS['example'])  # noqa: F821


def entries(value):
    """A list option as a list, whether set with = or with .append()."""
    if isinstance(value, LazyConfigValue):
        return value.get_value([])
    return list(value)


services = entries(c.JupyterHub.services)
(ngshare,) = [service for service in services if service['name'] == 'ngshare']
command = list(ngshare['command'])
# The example's own interpreter, sys.executable: here, the tests' one.
assert command[:3] == [sys.executable, '-m', 'ngshare'], command
ngshare['command'] = [sys.executable, *command[1:]] + [
    '--database', SETTINGS['ngshare_database'],
    '--storage', SETTINGS['ngshare_storage'],
] + SETTINGS['ngshare_args']
ngshare['url'] = 'http://127.0.0.1:%d' % SETTINGS['ngshare_port']
services.append({{'name': SETTINGS['test_service'], 'api_token': SETTINGS['token']}})
services.append(
    {{
        'name': 'other-svc',
        'api_token': SETTINGS['other_svc_token'],
        'oauth_client_id': 'service-other-svc',
        'oauth_redirect_uri': SETTINGS['other_svc_redirect'],
        'oauth_no_confirm': True,
    }}
)
services.append({{'name': 'admin2', 'api_token': SETTINGS['admin2_token']}})
c.JupyterHub.services = services

roles = entries(c.JupyterHub.load_roles)
roles.append(
    {{
        'name': SETTINGS['test_service'],
        'scopes': ['admin:users', 'tokens', 'servers'],
        'services': [SETTINGS['test_service']],
    }}
)
(user_role,) = [role for role in roles if role['name'] == 'user']
user_role['scopes'] = [*user_role['scopes'], 'access:services!service=other-svc']
c.JupyterHub.load_roles = roles

c.JupyterHub.spawner_class = 'simple'
c.Spawner.cmd = [sys.executable, SETTINGS['fake_server']]
c.SimpleLocalProcessSpawner.home_dir_template = SETTINGS['homes'] + '/{{username}}'
if SETTINGS['server_token_scopes'] is not None:
    c.Spawner.server_token_scopes = SETTINGS['server_token_scopes']

'''
    + HUB_ON_LOOPBACK
    + """c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = SETTINGS['password']
"""
)


def proxy_command() -> str:
    """configurable-http-proxy: $CONFIGPROXY_COMMAND, node_modules, or PATH."""
    candidates = [
        os.environ.get('CONFIGPROXY_COMMAND'),
        str(REPO_ROOT / 'node_modules' / '.bin' / 'configurable-http-proxy'),
        shutil.which('configurable-http-proxy'),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    unavailable(
        'configurable-http-proxy is not installed: run `npm ci` in the '
        'repository root (testing/run-tests does; it installs it into '
        'node_modules/ from package-lock.json)'
    )


def _read(path: Path) -> str:
    try:
        return path.read_text('utf-8', errors='replace')
    except FileNotFoundError:
        return ''


def process_state(pid: int) -> str | None:
    """The state letter of a process (``R``, ``S``, ``Z``...), None if gone."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(')', 1)[1].split()[0]


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    return process_state(pid) not in (None, 'Z')


def children(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of the running processes whose parent is ``pid``."""
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            argv = (entry / 'cmdline').read_bytes().split(b'\0')
        except OSError:
            continue
        fields = stat.rsplit(')', 1)[1].split()
        if int(fields[1]) == pid and fields[0] != 'Z':
            found.append(
                (
                    int(entry.name),
                    [arg.decode('utf-8', 'replace') for arg in argv if arg],
                )
            )
    return found


def environ_of(pid: int) -> dict[str, str]:
    """The environment a process was started with."""
    raw = Path(f'/proc/{pid}/environ').read_bytes()
    pairs = (item.split(b'=', 1) for item in raw.split(b'\0') if b'=' in item)
    return {key.decode(): value.decode('utf-8', 'replace') for key, value in pairs}


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


class RealHub:
    """``python -m jupyterhub -f <overlay>`` in ``workdir``.

    Attributes: ``url`` (the proxy, ``http://127.0.0.1:PORT``), ``hub_api``
    (``url + '/hub/api'``), ``service`` (``url + '/services/ngshare/'``),
    ``hub_port``, ``ngshare_port``, ``token`` (of the ``ngshare-tests``
    service), ``log_path``, ``proc``, ``ngshare_pid`` and ``ngshare_argv``,
    ``proxy_pid``, ``leftovers``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        ngshare_args: list[str] | tuple[str, ...] = (),
        server_token_scopes: list[str] | None = None,
    ):
        self.workdir = workdir
        self.proxy_port = free_port()
        self.proxy_api_port = free_port()
        self.hub_port = free_port()
        self.ngshare_port = free_port()
        self.token = secrets.token_hex(32)
        self.url = f'http://127.0.0.1:{self.proxy_port}'
        self.hub_api = self.url + '/hub/api'
        self.service = self.url + '/services/ngshare/'
        self.ngshare_storage = workdir / 'ngshare' / 'files'
        self.homes = workdir / 'homes'
        self.other_svc_token = secrets.token_hex(32)
        self.admin2_token = secrets.token_hex(32)
        self.other_svc_redirect = self.url + '/services/other-svc/oauth_callback'
        settings = {
            'example': str(EXAMPLE_CONFIG),
            'ngshare_database': f'sqlite:///{workdir / "ngshare" / "ngshare.db"}',
            'ngshare_storage': str(self.ngshare_storage),
            'ngshare_port': self.ngshare_port,
            'test_service': TEST_SERVICE,
            'token': self.token,
            'proxy_port': self.proxy_port,
            'proxy_api_port': self.proxy_api_port,
            'hub_port': self.hub_port,
            'hub_database': f'sqlite:///{workdir / "jupyterhub.sqlite"}',
            'cookie_secret_file': str(workdir / 'jupyterhub_cookie_secret'),
            'proxy': proxy_command(),
            'proxy_pid_file': str(workdir / 'jupyterhub-proxy.pid'),
            'password': HUB_PASSWORD,
            'ngshare_args': list(ngshare_args),
            'other_svc_token': self.other_svc_token,
            'other_svc_redirect': self.other_svc_redirect,
            'admin2_token': self.admin2_token,
            'fake_server': str(FAKE_SERVER),
            'homes': str(self.homes),
            'server_token_scopes': server_token_scopes,
        }
        self.config_path = workdir / 'jupyterhub_test_config.py'
        self.config_path.write_text(OVERLAY.format(settings=pprint.pformat(settings)))
        self.log_path = workdir / 'jupyterhub.log'
        self.ngshare_pid: int | None = None
        self.ngshare_argv: list[str] = []
        self.proxy_pid: int | None = None
        # PIDs that outlived the Hub and had to be killed by stop()
        self.leftovers: list[int] = []
        self._log = open(self.log_path, 'wb')  # noqa: SIM115 (closed in stop)
        env = ngshare_env({'CONFIGPROXY_AUTH_TOKEN': None})
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'jupyterhub', '-f', str(self.config_path)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
            self._find_children()
        except BaseException:
            self.stop()
            raise

    def _fail(self, message: str):
        raise AssertionError(f'{message}\n--- jupyterhub.log ---\n{self.log_text()}')

    def _wait_until(self, url: str, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self._fail(f'jupyterhub exited with {self.proc.returncode} ({what})')
            try:
                if requests.get(url, timeout=2, allow_redirects=False).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self._fail(f'{what}: no answer from {url} within {START_TIMEOUT}s')
            time.sleep(POLL_INTERVAL)

    def _wait_ready(self) -> None:
        self._wait_until(f'http://127.0.0.1:{self.hub_port}/hub/api/', 'Hub API')
        self._wait_until(self.service + 'healthz', 'ngshare through the proxy')

    def _find_children(self) -> None:
        for pid, argv in children(self.proc.pid):
            if argv[1:3] == ['-m', 'ngshare']:
                self.ngshare_pid, self.ngshare_argv = pid, argv
            elif any('configurable-http-proxy' in arg for arg in argv):
                self.proxy_pid = pid
        if self.ngshare_pid is None or self.proxy_pid is None:
            self._fail(
                f'ngshare or the proxy is not a child of jupyterhub: '
                f'{children(self.proc.pid)}'
            )

    def log_text(self) -> str:
        return _read(self.log_path)

    # The Hub's REST API, as the ngshare-tests service

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {'Authorization': f'token {self.token}'}
        return requests.request(
            method, self.hub_api + path, headers=headers, timeout=30, **kwargs
        )

    def create_user(self, name: str) -> dict:
        resp = self.api('POST', '/users/' + urllib.parse.quote(name, safe=''))
        assert resp.status_code == 201, (resp.status_code, resp.text)
        return resp.json()

    def new_token(self, name: str, **body) -> dict:
        """``POST /hub/api/users/NAME/tokens``; the model, with ``token``."""
        resp = self.api(
            'POST',
            f'/users/{urllib.parse.quote(name, safe="")}/tokens',
            json={'note': 'ngshare tests', **body},
        )
        assert resp.status_code == 201, (resp.status_code, resp.text)
        return resp.json()

    def start_server(self, name: str) -> str:
        """Spawn ``name``'s default server; the API token the Hub gave it."""
        resp = self.api('POST', f'/users/{urllib.parse.quote(name, safe="")}/server')
        assert resp.status_code in (201, 202), (resp.status_code, resp.text)
        token_file = self.homes / name / 'api_token'
        deadline = time.monotonic() + START_TIMEOUT
        while not token_file.exists():
            if time.monotonic() > deadline:
                self._fail(f'the server of {name} did not start')
            time.sleep(POLL_INTERVAL)
        return token_file.read_text()

    # Stopping

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Stop the Hub as an administrator would (SIGTERM), bounded.

        JupyterHub then stops its managed services and its proxy. Whatever
        of them is still running after that is killed here, by PID, so that
        no process outlives the tests, and recorded in ``leftovers`` (the
        shutdown test fails on it).
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        for pid in (self.ngshare_pid, self.proxy_pid):
            if pid is not None and not wait_gone(pid, STOP_TIMEOUT):
                self.leftovers.append(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_gone(pid, STOP_TIMEOUT)
        if not self._log.closed:
            self._log.close()


@pytest.fixture(scope='module')
def real_hub(tmp_path_factory):
    """One real JupyterHub with ngshare for the whole module."""
    hub = RealHub(tmp_path_factory.mktemp('jupyterhub'))
    try:
        yield hub
    finally:
        hub.stop()


XSRF_FIELD = re.compile(r'name="_xsrf"\s+value="([^"]+)"')


def browser_login(session: requests.Session, start_url: str, name: str):
    """Open ``start_url`` as a browser would, signing in at the Hub on the way.

    Follows redirects to the Hub's login page (ngshare -> OAuth authorize
    -> login), submits its form with the ``_xsrf`` field and cookie the page
    set, then follows redirects back (authorize -> ngshare's
    ``oauth_callback`` -> ``start_url``). Returns the final response.
    """
    page = session.get(start_url, timeout=30)
    assert page.status_code == 200, (page.status_code, page.url, page.text[:500])
    assert urllib.parse.urlparse(page.url).path == '/hub/login', page.url
    match = XSRF_FIELD.search(page.text)
    assert match, 'no _xsrf field on the login page:\n' + page.text[:2000]
    return session.post(
        page.url,  # /hub/login?next=<the authorize URL>
        data={'username': name, 'password': HUB_PASSWORD, '_xsrf': match.group(1)},
        timeout=30,
    )
