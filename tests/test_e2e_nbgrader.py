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

This module plays our plugin; ``test_e2e_nbgrader_old_client.py`` plays the
old one with the same fixture and tests (:data:`CLIENTS` is the only
difference), so that the two courses run on two workers at once too.

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
    '_e2e_stand_alone',
)

from _course_clients import NEW_CLIENT  # noqa: E402
from _e2e_stand_alone import stand_alone_tests  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# The clients this module plays the course with.
CLIENTS = {NEW_CLIENT.name: NEW_CLIENT}


(
    stand_alone,
    test_course_with_stand_alone_ngshare,
    test_after_the_course_with_stand_alone_ngshare,
) = stand_alone_tests(CLIENTS)
