"""docs/test-hub.md's recipe, run as written under a real JupyterHub.

The page's ``jupyterhub_config.py`` is loaded unchanged by a small overlay
that moves only what a test run must move (ports, the Hub's and ngshare's
files, the proxy from ``node_modules``); the real ``jupyterhub`` then starts
ngshare and configurable-http-proxy. The page's shell commands create users
and tokens as the provisioner service and use those tokens against ngshare
through the proxy, with only the Hub's address changed: if a scope, a REST
call or the ngshare calls of the page stopped working, this fails.
"""

from __future__ import annotations

import contextlib
import os
import pprint
import secrets
import signal
import subprocess
import sys
import time

import pytest
import requests
from _doc_blocks import DOCS, doc_blocks, run_blocks
from _jupyterhub import HUB_ON_LOOPBACK, children, proxy_command, wait_gone
from _servers import free_port, ngshare_env

pytestmark = pytest.mark.e2e  # a real JupyterHub: slow, not in the quick lane

PAGE = DOCS / 'test-hub.md'
EXAMPLE_ADDRESS = 'http://127.0.0.1:8000'
START_TIMEOUT = 60.0

OVERLAY = (
    '''\
"""Test overlay: the page's configuration, with test ports and paths."""

SETTINGS = {settings}

c = get_config()  # noqa: F821
load_subconfig(SETTINGS['recipe'])  # noqa: F821

(ngshare,) = [s for s in c.JupyterHub.services if s['name'] == 'ngshare']
command = list(ngshare['command'])
command[command.index('--database') + 1] = SETTINGS['ngshare_database']
command[command.index('--storage') + 1] = SETTINGS['ngshare_storage']
ngshare['command'] = command
ngshare['url'] = 'http://127.0.0.1:%d' % SETTINGS['ngshare_port']

'''
    + HUB_ON_LOOPBACK
)


@pytest.fixture
def recipe_hub(tmp_path):
    """``jupyterhub`` on the page's configuration; (proxy URL, token)."""
    recipe = tmp_path / 'jupyterhub_config.py'
    recipe.write_text(doc_blocks(PAGE)['test-hub-config'])
    proxy_port = free_port()
    settings = {
        'recipe': str(recipe),
        'ngshare_database': f'sqlite:///{tmp_path / "ngshare.db"}',
        'ngshare_storage': str(tmp_path / 'files'),
        'ngshare_port': free_port(),
        'proxy_port': proxy_port,
        'proxy_api_port': free_port(),
        'hub_port': free_port(),
        'hub_database': f'sqlite:///{tmp_path / "jupyterhub.sqlite"}',
        'cookie_secret_file': str(tmp_path / 'jupyterhub_cookie_secret'),
        'proxy': proxy_command(),
        'proxy_pid_file': str(tmp_path / 'proxy.pid'),
    }
    overlay = tmp_path / 'overlay_config.py'
    overlay.write_text(OVERLAY.format(settings=pprint.pformat(settings)))
    token = secrets.token_hex(32)
    url = f'http://127.0.0.1:{proxy_port}'
    log_path = tmp_path / 'jupyterhub.log'
    with open(log_path, 'wb') as log:
        hub = subprocess.Popen(
            [sys.executable, '-m', 'jupyterhub', '-f', str(overlay)],
            cwd=tmp_path,
            env=ngshare_env(
                {'PROVISIONER_TOKEN': token, 'CONFIGPROXY_AUTH_TOKEN': None}
            ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    started: list[int] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert hub.poll() is None, log_path.read_text()
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + '/services/ngshare/healthz', timeout=2).ok:
                    break
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        started = [pid for pid, _argv in children(hub.pid)]
        yield url, token
    finally:
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(timeout=30)
            except subprocess.TimeoutExpired:
                hub.kill()
                hub.wait(timeout=30)
        for pid in started:  # ngshare and the proxy, stopped by the Hub
            if not wait_gone(pid, 30):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_the_recipe_creates_users_and_tokens_that_ngshare_accepts(recipe_hub):
    url, token = recipe_hub
    done = run_blocks(
        PAGE,
        ['test-hub-users', 'test-hub-ngshare'],
        {'PROVISIONER_TOKEN': token},
        replace={EXAMPLE_ADDRESS: url},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # Four users created, then three answers of ngshare on one line
    # (curl prints no line break after them).
    assert lines[:4] == ['admin 201', 'kevin 201', 'lawrence 201', 'eric 201']
    assert lines[4:] == [
        '{"success": true}{"success": true}{"success": true, "courses": ["NBG101"]}'
    ], done.stdout
    # A token without the page's scope is refused by ngshare.
    bare = requests.post(
        f'{url}/hub/api/users/eric/tokens',
        headers={'Authorization': f'token {token}'},
        json={'scopes': []},
        timeout=30,
    )
    assert bare.status_code == 201, bare.text
    answer = requests.get(
        f'{url}/services/ngshare/courses',
        headers={'Authorization': f'token {bare.json()["token"]}'},
        timeout=30,
    )
    assert (answer.status_code, answer.json()) == (
        403,
        {'success': False, 'message': 'Invalid token'},
    )
