"""What to do when a component the tests need is not installed.

testing/run-tests installs every component (PostgreSQL, Chromium, the npm
proxy, ngshare 0.6.0's venv) where it may. Where it may not (no root, no
apt-get), a developer's run skips the tests that need the missing piece,
with a reason that says how to install it; a CI run (``$CI`` set, as CI
systems and .ci/run do) fails instead, so that CI never passes by skipping.
"""

from __future__ import annotations

import os

import pytest


def on_ci() -> bool:
    """True when ``$CI`` is set to anything but an empty string or "false"."""
    return os.environ.get('CI', '').strip().lower() not in ('', '0', 'false')


def unavailable(reason: str) -> None:
    """Skip (developer) or fail (CI) the current test, module or fixture."""
    if on_ci():
        pytest.fail(f'{reason} (required on CI)', pytrace=False)
    pytest.skip(reason, allow_module_level=True)
