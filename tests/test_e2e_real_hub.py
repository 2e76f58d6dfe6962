"""End to end under a real JupyterHub: the course of :mod:`_course_scenario`
played by our plugin (``ngshare.exchange``, with the deadline phases of
:mod:`_course_deadlines` too), each phase a test of its own (as in
``test_e2e_nbgrader.py``), through the proxy at ``/services/ngshare``, with Hub
tokens of real Hub users (the ``real_hub`` fixture of :mod:`_jupyterhub`,
a plugin of conftest.py); the stand-alone half is
``test_e2e_nbgrader.py``, and ``test_e2e_nbgrader_old_client.py`` plays
the course with the old plugin (ngshare_exchange 0.5.3): what the Hub adds
(its tokens, the proxy, the service's prefix) is the same for both
clients, and a second whole course here cost CI about ten minutes of a
worker.
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
    '_course_deadline_material',
    '_course_deadlines',
    '_course_history',
)

from _course_clients import NEW_CLIENT  # noqa: E402
from _course_harness import Course, Deployment  # noqa: E402
from _course_history import check_course_history  # noqa: E402
from _course_material import ALL_USERS, COURSE  # noqa: E402
from _course_scenario import course_phases, phase_params, start_course  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CLIENTS = {NEW_CLIENT.name: NEW_CLIENT}


# The scopes of a stock single-user server's $JUPYTERHUB_API_TOKEN (the
# `server` role, for the user's default server): what the exchange presents.
SERVER_SCOPES = ['users:activity!user', 'access:servers!server={name}/']


@pytest.fixture(scope='module')
def hub_token(real_hub):
    """``hub_token(name)``: a server-scoped token of Hub user ``name``.

    Users and tokens are made once per Hub (the course's users at once, any
    other the first time a phase asks).
    """
    tokens: dict[str, str] = {}

    def token(name: str) -> str:
        if name not in tokens:
            real_hub.create_user(name)
            scopes = [scope.format(name=name) for scope in SERVER_SCOPES]
            tokens[name] = real_hub.new_token(name, scopes=scopes)['token']
        return tokens[name]

    for name in ALL_USERS:
        token(name)
    return token


@pytest.fixture(scope='module', params=list(CLIENTS))
def under_hub(request, real_hub, hub_token):
    """The course under the module's real Hub, once per client.

    Module-scoped so that each phase is a test of its own, played in order
    on the same deployment (``--dist loadfile`` keeps the module on one
    worker). The Hub (and its ngshare) serves the course once per client,
    so each client starts from no course.
    """
    gone = requests.delete(
        f'{real_hub.service.rstrip("/")}/course/{COURSE}',
        headers={'Authorization': f'token {hub_token("admin")}'},
        timeout=30,
    )
    assert gone.status_code in (200, 404), gone.text
    deployment = Deployment(
        name='ngshare under JupyterHub, through the proxy',
        url=real_hub.service.rstrip('/'),  # http://127.0.0.1:PORT/services/ngshare
        token=hub_token,
        log_text=real_hub.log_text,
        hub=True,
        client=CLIENTS[request.param],
    )
    return start_course(deployment, real_hub.workdir / f'course-{request.param}')


@pytest.mark.parametrize(
    ('under_hub', 'phase'),
    phase_params(CLIENTS),
    indirect=['under_hub'],
    scope='module',
)
def test_course_under_real_jupyterhub(under_hub: Course, phase):
    _, title = phase
    under_hub.play(course_phases(under_hub.deployment.client), until=title)


def test_after_the_course_under_real_jupyterhub(under_hub: Course, real_hub):
    under_hub.play(course_phases(under_hub.deployment.client))
    assert real_hub.running, real_hub.log_text()
    # Every fetch, submit, collect and feedback of the course is in its
    # history, once, in order (:mod:`_course_history`).
    check_course_history(under_hub)
