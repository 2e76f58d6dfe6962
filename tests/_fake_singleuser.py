"""A stand-in single-user server, spawned by the real JupyterHub in the tests.

JupyterHub (``SimpleLocalProcessSpawner``) runs ``python _fake_singleuser.py``
with the environment a real ``jupyterhub-singleuser`` gets. This writes the
``$JUPYTERHUB_API_TOKEN`` it was given to ``$HOME/api_token`` (so the tests
can present exactly the token a stock single-user server presents to
ngshare), then answers every HTTP request on the port of
``$JUPYTERHUB_SERVICE_URL`` (127.0.0.1 only), so that the Hub sees it up.
It exits on SIGTERM or SIGINT, when the Hub stops it.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import sys
import urllib.parse
from pathlib import Path


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server API)
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.end_headers()
        self.wfile.write(b'fake single-user server\n')

    def log_message(self, format, *args):  # noqa: A002 (the http.server API)
        pass


def main() -> None:
    token_file = Path(os.environ['HOME']) / 'api_token'
    partial = token_file.with_suffix('.partial')
    partial.write_text(os.environ['JUPYTERHUB_API_TOKEN'])
    partial.replace(token_file)  # readers never see half a token
    port = urllib.parse.urlsplit(os.environ['JUPYTERHUB_SERVICE_URL']).port
    server = http.server.HTTPServer(('127.0.0.1', port), _Ok)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == '__main__':
    main()
