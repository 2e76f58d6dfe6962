"""Start ngshare 0.6.0 stand-alone, the caller named by the ``user`` parameter.

Run by the Python of a venv holding ngshare==0.6.0, with 0.6.0's own
command-line options (``--vngshare --host --port --admins --database
--storage``)::

    .venv-ngshare-0.6.0/bin/python benchmarks/launch_060.py --vngshare \\
        --port 12122 --admins root --database sqlite:////tmp/060.db \\
        --storage /tmp/060-files

Why a launcher: 0.6.0's ``--vngshare`` puts its ``MockAuth`` class first
among the request handler's bases, but ``MyRequestHandler`` defines
``get_current_token`` and ``user_for_token`` itself, which shadow the mock's:
every request without a Hub token is refused (403, or a redirect to a login
page). 0.6.0's own test suite (``ngshare/test_ngshare.py``, fixture
``app``) therefore sets the two methods of ``MockAuth`` on
``MyRequestHandler`` directly; this launcher does exactly that, then runs
0.6.0's ``main``. Nothing else changes: 0.6.0 serves with its own code, and
asks no Hub (a stand-in Hub would add a round trip to every request).

0.6.0 reads the Hub's service variables even stand-alone: they get
placeholders unless set (no request goes to that URL). The launcher runs as
a script, so ``benchmarks/`` is first on ``sys.path`` and this checkout's
``ngshare`` package cannot shadow 0.6.0's (run it with ``PYTHONPATH`` unset).
"""

from __future__ import annotations

import os
import sys

PLACEHOLDERS = {
    'JUPYTERHUB_API_URL': 'http://127.0.0.1:9/hub/api',  # discard port: unused
    'JUPYTERHUB_API_TOKEN': 'unused',
    'JUPYTERHUB_CLIENT_ID': 'service-ngshare',
    'JUPYTERHUB_SERVICE_PREFIX': '/api/',
}


def main(argv: list[str]) -> None:
    for name, value in PLACEHOLDERS.items():
        os.environ.setdefault(name, value)
    from ngshare import ngshare, version

    if version.__version__ != '0.6.0':
        sys.exit(f'launch_060: found ngshare {version.__version__}, not 0.6.0')
    # As 0.6.0's test suite does (test_ngshare.py, fixture "app").
    ngshare.MyRequestHandler.get_current_token = ngshare.MockAuth.get_current_token
    ngshare.MyRequestHandler.user_for_token = ngshare.MockAuth.user_for_token
    ngshare.main(argv)


if __name__ == '__main__':
    main(sys.argv[1:])
