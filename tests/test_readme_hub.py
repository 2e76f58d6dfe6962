"""The README's JupyterHub snippet, as written, under a real JupyterHub.

An administrator pastes the README's ``jupyterhub_config.py`` block into the
configuration of a Hub that runs from a virtual environment. These tests
take that block out of ``README.md`` and run ``python -m jupyterhub`` (this
interpreter, a virtual environment with ngshare installed) with the real
configurable-http-proxy on a small overlay that loads the block unchanged
and sets only what a test run must: ports, paths (``--database`` and
``--storage`` appended to the service command), the Hub's database and
cookie secret, and the ``dummy`` authenticator with one allowed user.

* The block as written: the service comes up through the proxy with
  ``sys.executable`` as its interpreter, and a user's browser login to
  ``/services/ngshare/`` lands on the welcome page, not on the Hub's
  ``403: You do not have permission to access JupyterHub service ngshare``
  (the role of the block) and with no "Authorize access" page on the way
  (``oauth_no_confirm``).
* The trap the block avoids, as docs/jupyterhub.md describes it: with a
  bare ``'python3'`` whose ``PATH`` finds a Python without ngshare, the
  service exits at start-up and the whole Hub exits with status 1, leaving
  the proxy it started running.
"""

from __future__ import annotations

import contextlib
import os
import pprint
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from _jupyterhub import (
    HUB_ON_LOOPBACK,
    HUB_PASSWORD,
    START_TIMEOUT,
    RealHub,
    browser_login,
    is_running,
    proxy_command,
    wait_gone,
)
from _servers import REPO_ROOT, free_port, ngshare_env

pytestmark = pytest.mark.e2e  # a real JupyterHub: slow, not in the quick lane

USER = 'kevin'
HUB_BLOCK = re.compile(r'```python\n(.*?)```', re.DOTALL)
SYSTEM_PYTHON = Path('/usr/bin/python3')

OVERLAY = (
    '''\
"""Test overlay: the README's block unchanged, with test ports and paths."""

from traitlets.config import LazyConfigValue

SETTINGS = {settings}

c = get_config()  # noqa: F821
load_subconfig(SETTINGS['snippet'])  # noqa: F821

services = c.JupyterHub.services
if isinstance(services, LazyConfigValue):
    services = services.get_value([])
(ngshare,) = [service for service in services if service['name'] == 'ngshare']
ngshare['command'] = list(ngshare['command']) + [
    '--database', SETTINGS['ngshare_database'],
    '--storage', SETTINGS['ngshare_storage'],
]
ngshare['url'] = 'http://127.0.0.1:%d' % SETTINGS['ngshare_port']
c.JupyterHub.services = services

'''
    + HUB_ON_LOOPBACK
    + """c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = SETTINGS['password']
c.Authenticator.allowed_users = {{SETTINGS['user']}}
"""
)


def readme_hub_block() -> str:
    """The README's one Python block that configures JupyterHub."""
    readme = (REPO_ROOT / 'README.md').read_text(encoding='utf-8')
    blocks = [b for b in HUB_BLOCK.findall(readme) if 'c.JupyterHub.services' in b]
    assert len(blocks) == 1, f'README.md has {len(blocks)} JupyterHub blocks'
    return blocks[0]


class ReadmeHub(RealHub):
    """A :class:`RealHub` whose configuration is ``snippet`` (instead of the
    example of testing/install_jhmanaged) plus :data:`OVERLAY`."""

    def __init__(self, workdir: Path, snippet: str, *, env=None, wait=True):
        self.workdir = workdir
        self.proxy_port = free_port()
        self.proxy_api_port = free_port()
        self.hub_port = free_port()
        self.ngshare_port = free_port()
        self.url = f'http://127.0.0.1:{self.proxy_port}'
        self.hub_api = self.url + '/hub/api'
        self.service = self.url + '/services/ngshare/'
        self.proxy_pid_file = workdir / 'jupyterhub-proxy.pid'
        snippet_path = workdir / 'readme_snippet.py'
        snippet_path.write_text(snippet, encoding='utf-8')
        settings = {
            'snippet': str(snippet_path),
            'ngshare_database': f'sqlite:///{workdir / "ngshare" / "ngshare.db"}',
            'ngshare_storage': str(workdir / 'ngshare' / 'files'),
            'ngshare_port': self.ngshare_port,
            'proxy_port': self.proxy_port,
            'proxy_api_port': self.proxy_api_port,
            'hub_port': self.hub_port,
            'hub_database': f'sqlite:///{workdir / "jupyterhub.sqlite"}',
            'cookie_secret_file': str(workdir / 'jupyterhub_cookie_secret'),
            'proxy': proxy_command(),
            'proxy_pid_file': str(self.proxy_pid_file),
            'password': HUB_PASSWORD,
            'user': USER,
        }
        self.config_path = workdir / 'jupyterhub_test_config.py'
        self.config_path.write_text(OVERLAY.format(settings=pprint.pformat(settings)))
        self.log_path = workdir / 'jupyterhub.log'
        self.ngshare_pid = None
        self.ngshare_argv = []
        self.proxy_pid = None
        self.leftovers = []
        self._log = open(self.log_path, 'wb')  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'jupyterhub', '-f', str(self.config_path)],
            cwd=workdir,
            env=ngshare_env({'CONFIGPROXY_AUTH_TOKEN': None, **(env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if not wait:
            return
        try:
            self._wait_ready()
            self._find_children()
        except BaseException:
            self.stop()
            raise


@pytest.fixture(scope='module')
def readme_hub(tmp_path_factory):
    hub = ReadmeHub(tmp_path_factory.mktemp('readme-hub'), readme_hub_block())
    try:
        yield hub
    finally:
        hub.stop()


def test_the_block_runs_ngshare_with_the_hubs_interpreter(readme_hub):
    assert readme_hub.ngshare_argv[0] == sys.executable, readme_hub.ngshare_argv
    assert readme_hub.ngshare_argv[1:5] == ['-m', 'ngshare', '--admins', 'admin,admin2']
    health = requests.get(readme_hub.service + 'healthz', timeout=30)
    assert health.json() == {'success': True}


def test_browser_login_reaches_the_welcome_page(readme_hub):
    session = requests.Session()
    page = browser_login(session, readme_hub.service, USER)
    # Without the block's role the Hub answers this instead, after the login.
    assert 'You do not have permission to access JupyterHub service' not in page.text
    assert page.status_code == 200, (page.status_code, page.url, page.text[:1000])
    # Straight back, without the Hub's "Authorize access" page on the way.
    assert page.url == readme_hub.service, page.url
    assert f'Signed in as <strong>{USER}</strong>' in page.text, page.text[:2000]
    hops = [r.url for r in page.history]
    assert any('/services/ngshare/oauth_callback' in hop for hop in hops), hops


@pytest.mark.skipif(
    not SYSTEM_PYTHON.is_file()
    or subprocess.run(
        [str(SYSTEM_PYTHON), '-c', 'import ngshare'],
        capture_output=True,
        env={'PATH': '/usr/bin:/bin'},
        cwd='/',
        check=False,
    ).returncode
    == 0,
    reason='needs a /usr/bin/python3 without ngshare (the trap the README avoids)',
)
def test_bare_python3_without_ngshare_makes_the_hub_exit(tmp_path):
    """docs/jupyterhub.md: a service that fails at start-up is not restarted;
    JupyterHub 6 logs its exit status and exits with status 1, and the proxy
    it had started keeps running (here it is stopped by its PID)."""
    snippet = readme_hub_block().replace("sys.executable, '-m'", "'python3', '-m'")
    assert "'python3', '-m', 'ngshare'" in snippet
    hub = ReadmeHub(
        tmp_path,
        snippet,
        # the PATH of a Hub started by absolute path from a virtual
        # environment (systemd's ExecStart=/opt/jupyterhub/bin/jupyterhub)
        env={
            'PATH': f'/usr/bin:/bin:{Path(proxy_command()).parent}',
            'PYTHONPATH': None,
        },
        wait=False,
    )
    proxy_pid = None
    try:
        hub.proc.wait(timeout=START_TIMEOUT)
        log = hub.log_text()
        assert hub.proc.returncode == 1, log
        assert 'No module named ngshare' in log, log
        assert 'Service ngshare exited with status 1' in log, log
        assert 'JupyterHub is now running' not in log, log
        proxy_pid = int(hub.proxy_pid_file.read_text().strip())
        assert is_running(proxy_pid), log
    finally:
        hub.stop()
        if proxy_pid is not None and is_running(proxy_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proxy_pid, signal.SIGTERM)
            wait_gone(proxy_pid, 30)
