"""End to end: a whole nbgrader course through ngshare, with the real client.

nbgrader 0.9 and ``ngshare_exchange`` 0.5.3 (``nbgrader ...`` and
``ngshare-course-management ...`` as subprocesses, one HOME and environment
per user) play the course of :mod:`_course_scenario`, and so does the
plugin shipped with ngshare (``ngshare.exchange``, see docs/exchange.md),
each twice:

* against ngshare stand-alone (``--vngshare``) with ``--jupyterhub_api_url``
  pointing at the Hub stand-in: the client sends ``user`` on some requests
  only, and ngshare resolves the token of the others through the stand-in;
* against ngshare under a real JupyterHub: ``test_e2e_real_hub.py`` (a
  module of its own, so that the two run on two test workers at once).

Here each phase of the course is a test of its own (``...[CLIENT-03-release-
the-assignment]``), in order on one deployment per client; once a phase
fails, the later ones skip naming it, and a phase run alone (``-k``) plays
the ones before it first. ``ngshare.exchange`` also plays the deadline
phases (``...[ngshare.exchange-11-release-with-a-due-date]`` to ``-14-``,
:mod:`_course_deadlines`); ngshare_exchange 0.5.3 plays the ten others only.

Install the client with the README's test command (``ngshare-exchange`` with
``--no-deps``: its ``jupyter_core<4.11.2`` pin would block nbgrader 0.9).
"""

from __future__ import annotations

import pytest

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

from _course_clients import CLIENTS  # noqa: E402
from _course_harness import Course, Deployment  # noqa: E402
from _course_history import check_course_history  # noqa: E402
from _course_scenario import course_phases, phase_params, start_course  # noqa: E402
from _servers import HubStub, start_server, token_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope='module', params=list(CLIENTS))
def stand_alone(request, tmp_path_factory):
    """The Hub stand-in, ngshare stand-alone and the course, once per client.

    Module-scoped so that each phase of the course is a test of its own,
    played in order on the same deployment (``--dist loadfile`` keeps the
    module on one worker).
    """
    root = tmp_path_factory.mktemp(f'stand-alone-{request.param}')
    (root / 'hubstub').mkdir()
    hub = HubStub(root / 'hubstub')
    try:
        server = start_server(
            root / 'ngshare',
            hub_mode=False,
            hub=hub,
            admins='admin',
            args=['--jupyterhub_api_url', hub.api_url],
        )
        try:
            deployment = Deployment(
                name='stand-alone ngshare, Hub stand-in',
                url=server.api.rstrip('/'),
                token=token_for,
                log_text=server.log_text,
                hub=False,
                client=CLIENTS[request.param],
                debug=server.debug,
            )
            yield hub, server, start_course(deployment, root / 'course')
        finally:
            server.stop()
    finally:
        hub.stop()


@pytest.mark.parametrize(
    ('stand_alone', 'phase'),
    phase_params(CLIENTS),
    indirect=['stand_alone'],
    scope='module',
)
def test_course_with_stand_alone_ngshare(stand_alone, phase):
    course: Course = stand_alone[2]
    _, title = phase
    course.play(course_phases(course.deployment.client), until=title)


def test_after_the_course_with_stand_alone_ngshare(stand_alone):
    hub, server, course = stand_alone
    course.play(course_phases(course.deployment.client))
    # The client's requests without ``user`` were identified by their token,
    # through the Hub stand-in.
    for name in ('kevin', 'lawrence', 'eric', 'grace'):
        assert hub.user_requests(token_for(name)) > 0, name
    assert server.running, server.describe()
    # Every fetch, submit, collect and feedback of the course is in its
    # history, once, in order (:mod:`_course_history`).
    check_course_history(course)
