#!/usr/bin/env python3
"""A loopback stand-in for JupyterHub's ``GET /hub/api/user``, for ngshare 0.6.0.

ngshare 0.6.0 cannot name the caller in its stand-alone mode under
JupyterHub 6 (its own token lookup shadows the mock that would read the
``user`` parameter), so it asks the Hub for the owner of every request's
token, as in production. This process answers that question: the token is
the user name (``Authorization: token alice`` is alice). Standard library
only, a thread per request; it prints ``listening PORT`` once it listens.

    python3 benchmarks/hub_standin.py --port 0
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    # Headers and body are two writes: without this a kept-alive client
    # waits for the delayed ACK (40 ms) on every answer.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        auth = self.headers.get('Authorization', '')
        scheme, _, token = auth.partition(' ')
        if self.path.split('?')[0].rstrip('/').endswith('/user') and token:
            status, body = 200, {'name': token, 'admin': False, 'groups': []}
        else:
            status, body = 403, {'status': 403, 'message': 'no token'}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(('127.0.0.1', args.port), Handler)
    server.daemon_threads = True
    print(f'listening {server.server_address[1]}', flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main()
