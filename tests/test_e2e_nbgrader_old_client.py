"""End to end, stand-alone, with the old plugin (ngshare_exchange 0.5.3):
the course of ``test_e2e_nbgrader.py`` (see there), played by the client
that deployments of ngshare 0.6.0 run, for compatibility; a module of its
own so that it runs beside our plugin's course, on another worker.
"""

from __future__ import annotations

import pytest

# Plain asserts in the course's modules explain themselves.
pytest.register_assert_rewrite(
    '_course_clients',
    '_course_harness',
    '_course_material',
    '_course_grading',
    '_course_scenario',
    '_course_history',
    '_e2e_stand_alone',
)

from _course_clients import OLD_CLIENT  # noqa: E402
from _e2e_stand_alone import stand_alone_tests  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CLIENTS = {OLD_CLIENT.name: OLD_CLIENT}

(
    stand_alone,
    test_course_with_stand_alone_ngshare,
    test_after_the_course_with_stand_alone_ngshare,
) = stand_alone_tests(CLIENTS)
