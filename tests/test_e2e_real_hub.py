"""End to end under a real JupyterHub: the course of :mod:`_course_scenario`
with both clients, through the proxy at ``/services/ngshare``, with Hub
tokens of real Hub users (the ``real_hub`` fixture of :mod:`_jupyterhub`,
a plugin of conftest.py); the stand-alone half is
``test_e2e_nbgrader.py``.
"""

from __future__ import annotations

import pytest
import requests

# Plain asserts in the course's modules explain themselves, as in this one.
pytest.register_assert_rewrite(
    '_course_clients',
    '_course_harness',
    '_course_material',
    '_course_grading',
    '_course_scenario',
)

from _course_clients import CLIENTS  # noqa: E402
from _course_harness import Deployment  # noqa: E402
from _course_material import ALL_USERS, COURSE  # noqa: E402
from _course_scenario import run_course  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.parametrize('client', list(CLIENTS)),
]


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
