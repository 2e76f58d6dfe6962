"""The stand-alone e2e course as a fixture and tests, for a set of clients.

``test_e2e_nbgrader.py`` (our plugin) and ``test_e2e_nbgrader_old_client.py``
(ngshare_exchange 0.5.3) each take them with their own clients: two modules,
which ``--dist loadfile`` runs on two workers at once, where one module
played both courses one after the other.
"""

from __future__ import annotations

import pytest
from _course_clients import CLIENTS as ALL_CLIENTS
from _course_harness import Course, Deployment
from _course_history import check_course_history
from _course_scenario import course_phases, phase_params, start_course
from _servers import HubStub, start_server, token_for

__all__ = ['stand_alone_tests']


def stand_alone_tests(clients: dict) -> tuple:
    """``(stand_alone, test_course_with_stand_alone_ngshare,
    test_after_the_course_with_stand_alone_ngshare)`` for ``clients``, to be
    bound to those names in a test module."""

    @pytest.fixture(scope='module', params=list(clients))
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
                    client=ALL_CLIENTS[request.param],
                    debug=server.debug,
                )
                yield hub, server, start_course(deployment, root / 'course')
            finally:
                server.stop()
        finally:
            hub.stop()

    @pytest.mark.parametrize(
        ('stand_alone', 'phase'),
        phase_params(clients),
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

    return (
        stand_alone,
        test_course_with_stand_alone_ngshare,
        test_after_the_course_with_stand_alone_ngshare,
    )
