"""pytest plugin: ngshare 0.6.0's own test suite, black-box, against a server.

Loaded by ``tests/test_original_suite.py`` into the ngshare 0.6.0 venv's
pytest (``-p ngshare060_against_server``, after ``-p pytest_tornado.plugin``
with plugin autoloading off, so these fixtures override pytest-tornado's).
The suite (``--pyargs ngshare.test_ngshare``) builds its URLs from
``base_url`` and fetches them with ``http_client``: pointing ``base_url`` at
the server under test (``NGSHARE_UNDER_TEST``, e.g. ``http://127.0.0.1:PORT``)
makes every request of it go over HTTP to that server. pytest-tornado's
``http_client`` still starts an in-process server for the application of
``--app-fixture``; ``empty_app`` makes that one serve nothing, so no request
can reach 0.6.0's own code by mistake (the suite's ``app`` fixture, which
builds 0.6.0's application, is never requested).
"""

from __future__ import annotations

import os

import pytest
import tornado.web


@pytest.fixture
def empty_app():
    """The application of pytest-tornado's own server: no routes at all."""
    return tornado.web.Application([])


@pytest.fixture
def base_url():
    """The server under test, instead of pytest-tornado's own server."""
    return os.environ['NGSHARE_UNDER_TEST'].rstrip('/')
