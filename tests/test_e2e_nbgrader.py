"""End to end: a whole nbgrader course through ngshare, with the real client.

nbgrader 0.9 and ``ngshare_exchange`` 0.5.3 (``nbgrader ...`` and
``ngshare-course-management ...`` as subprocesses, one HOME and environment
per user) play the course of :mod:`_nbgrader_course`, and so does the
plugin shipped with ngshare (``ngshare.exchange``, see docs/exchange.md),
each twice:

* against ngshare stand-alone (``--vngshare``) with ``--jupyterhub_api_url``
  pointing at the Hub stand-in: the client sends ``user`` on some requests
  only, and ngshare resolves the token of the others through the stand-in;
* against ngshare under a real JupyterHub (see :mod:`_jupyterhub`), through
  the proxy at ``/services/ngshare``, with Hub tokens of real Hub users.

Install the client with the README's test command (``ngshare-exchange`` with
``--no-deps``: its ``jupyter_core<4.11.2`` pin would block nbgrader 0.9).
"""

from __future__ import annotations

import pytest
import requests

# Plain asserts in the helper module explain themselves, as in this one.
pytest.register_assert_rewrite('_nbgrader_course')

from _jupyterhub import *  # noqa: E402, F403 (the real_hub fixture)
from _nbgrader_course import (  # noqa: E402
    ALL_USERS,
    CLIENTS,
    COURSE,
    Deployment,
    run_course,
)
from _servers import token_for  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.parametrize('client', list(CLIENTS)),
]


def test_course_with_stand_alone_ngshare(start_ngshare, hub, tmp_path, client):
    server = start_ngshare(
        hub_mode=False,
        hub=hub,
        admins='admin',
        args=['--jupyterhub_api_url', hub.api_url],
    )
    deployment = Deployment(
        name='stand-alone ngshare, Hub stand-in',
        url=server.api.rstrip('/'),
        token=token_for,
        log_text=server.log_text,
        hub=False,
        client=CLIENTS[client],
    )
    run_course(deployment, tmp_path / 'course')
    # The client's requests without ``user`` were identified by their token,
    # through the Hub stand-in.
    for name in ('kevin', 'lawrence', 'eric', 'grace'):
        assert hub.user_requests(token_for(name)) > 0, name
    assert server.running, server.describe()


# The scopes of a stock single-user server's $JUPYTERHUB_API_TOKEN (the
# `server` role, for the user's default server): what the exchange presents.
SERVER_SCOPES = ['users:activity!user', 'access:servers!server={name}/']


# Hub users and their tokens, made once per Hub (the Hub is per module).
_TOKENS: dict[tuple[int, str], str] = {}


def test_course_under_real_jupyterhub(real_hub, client):
    def token(name: str) -> str:
        if (id(real_hub), name) not in _TOKENS:
            _TOKENS[id(real_hub), name] = new_token(name)
        return _TOKENS[id(real_hub), name]

    def new_token(name: str) -> str:
        real_hub.create_user(name)
        scopes = [scope.format(name=name) for scope in SERVER_SCOPES]
        return real_hub.new_token(name, scopes=scopes)['token']

    for name in ALL_USERS:
        token(name)
    # The Hub (and its ngshare) serves the course once per client: start
    # from no course.
    gone = requests.delete(
        f'{real_hub.service.rstrip("/")}/course/{COURSE}',
        headers={'Authorization': f'token {token("admin")}'},
        timeout=30,
    )
    assert gone.status_code in (200, 404), gone.text
    deployment = Deployment(
        name='ngshare under JupyterHub, through the proxy',
        url=real_hub.service.rstrip('/'),  # http://127.0.0.1:PORT/services/ngshare
        token=token,
        log_text=real_hub.log_text,
        hub=True,
        client=CLIENTS[client],
    )
    run_course(deployment, real_hub.workdir / f'course-{client}')
    assert real_hub.running, real_hub.log_text()
