"""Who is calling stays apart from who may do what (issue 13).

:mod:`ngshare.auth` decides who is calling and builds an
:class:`~ngshare.actor.Actor`; it must not reach the ORM (as it did through
:mod:`ngshare.permissions`). Checked in a fresh interpreter, since this
test process has long imported everything. The debug actions' rules are
pure functions of the caller and the mode, so their whole table is checked
here; the course-role rules are proven over HTTP in test_permissions.py
and their debug reasons in test_debug_mode.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ngshare.actor import Actor
from ngshare.errors import ApiError
from ngshare.permissions import (
    may_change_data,
    may_dump,
    require_may_change_data,
    require_may_dump,
)


def imported_by(module: str) -> set[str]:
    """The ngshare modules a clean interpreter loads to import ``module``."""
    code = (
        'import importlib, json, sys\n'
        f'importlib.import_module({module!r})\n'
        "print(json.dumps([m for m in sys.modules if m.startswith('ngshare')]))\n"
    )
    result = subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(result.stdout))


def test_auth_imports_nothing_of_the_database():
    loaded = imported_by('ngshare.auth')
    assert 'ngshare.auth' in loaded and 'ngshare.actor' in loaded
    assert not {m for m in loaded if m.startswith('ngshare.database')}, loaded
    assert 'ngshare.permissions' not in loaded


def test_actor_is_a_leaf():
    package = {'ngshare', 'ngshare.version'}
    assert imported_by('ngshare.actor') - package == {'ngshare.actor'}


ADMIN = Actor('root', is_admin=True)
USER = Actor('kevin')


@pytest.mark.parametrize(
    ('actor', 'debug', 'dump', 'change'),
    [
        (ADMIN, False, True, False),
        (USER, False, False, False),
        (ADMIN, True, True, True),
        (USER, True, True, True),
        (None, False, False, False),
        (None, True, False, False),
    ],
)
def test_debug_action_rules(actor, debug, dump, change):
    """Dump: admins, or anyone signed in in debug mode; clear/init: debug only."""
    assert may_dump(actor, debug) is dump
    assert may_change_data(actor, debug) is change
    for rule, allowed in ((require_may_dump, dump), (require_may_change_data, change)):
        if allowed:
            rule(actor, debug)
        else:
            with pytest.raises(ApiError) as refused:
                rule(actor, debug)
            assert refused.value.status == 403
            assert refused.value.message_for(debug=True) == 'Permission denied'
