"""End to end: a whole nbgrader course through ngshare, with the real client.

nbgrader 0.9 and ``ngshare_exchange`` 0.5.3 (``nbgrader ...`` and
``ngshare-course-management ...`` as subprocesses, one HOME and environment
per user) play the course of :mod:`_nbgrader_course`, and so does the
plugin shipped with ngshare (``ngshare.exchange``, see docs/exchange.md),
each twice:

* against ngshare stand-alone (``--vngshare``) with ``--jupyterhub_api_url``
  pointing at the Hub stand-in: the client sends ``user`` on some requests
  only, and ngshare resolves the token of the others through the stand-in;
* against ngshare under a real JupyterHub: ``test_e2e_real_hub.py`` (a
  module of its own, so that the two run on two test workers at once).

Install the client with the README's test command (``ngshare-exchange`` with
``--no-deps``: its ``jupyter_core<4.11.2`` pin would block nbgrader 0.9).
"""

from __future__ import annotations

import pytest

# Plain asserts in the helper module explain themselves, as in this one.
pytest.register_assert_rewrite('_nbgrader_course')

from _nbgrader_course import (  # noqa: E402
    CLIENTS,
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
        debug=server.debug,
    )
    run_course(deployment, tmp_path / 'course')
    # The client's requests without ``user`` were identified by their token,
    # through the Hub stand-in.
    for name in ('kevin', 'lawrence', 'eric', 'grace'):
        assert hub.user_requests(token_for(name)) > 0, name
    assert server.running, server.describe()
