"""A tiny stand-in for the parts of the JupyterHub API that ngshare uses.

Run as ``python tests/hubstub.py --port P``. It listens on 127.0.0.1 only
and prints ``READY <port>`` once it accepts connections.

* ``GET /hub/api/user`` identifies the token of ``Authorization: token T``
  (or ``bearer T``) as JupyterHub does. A token ``tok-<hex of the UTF-8
  user name>`` belongs to that user; the model deliberately lacks the
  ``access:services`` scope, like the token of a stock single-user server.
  A token ``status-<code>`` makes the Hub fail with that HTTP status (e.g.
  ``status-500``). Any other token answers 403 with a JSON error.
* ``GET /stub/stats`` answers ``{"user_requests": N, "by_token": {...}}``:
  how many ``/hub/api/user`` requests arrived, in total and per token, so
  tests can tell whether ngshare caches its token lookups.
* ``GET /hub/login`` and ``GET /hub/api/oauth2/authorize`` answer a small
  HTML page (the targets of login redirects).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re

import tornado.web

TOKEN_PREFIX = 'tok-'
_AUTH_HEADER = re.compile(r'\s*(?:token|bearer)\s+(\S+)\s*$', re.IGNORECASE)


def token_for(name: str) -> str:
    """The token that this stub resolves to user ``name``."""
    return TOKEN_PREFIX + name.encode('utf-8').hex()


def name_for(token: str) -> str | None:
    """The user name a token stands for, or None if it is not a user token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    try:
        return bytes.fromhex(token[len(TOKEN_PREFIX) :]).decode('utf-8')
    except ValueError:
        return None


class _Json(tornado.web.RequestHandler):
    def write_json(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header('Content-Type', 'application/json; charset=UTF-8')
        self.finish(json.dumps(body))


class UserHandler(_Json):
    def get(self) -> None:
        match = _AUTH_HEADER.match(self.request.headers.get('Authorization', ''))
        token = match.group(1) if match else ''
        self.application.settings['counts'][token] += 1
        if token.startswith('status-') and token[len('status-') :].isdigit():
            code = int(token[len('status-') :])
            self.write_json(code, {'status': code, 'message': 'Hub stub failure'})
            return
        name = name_for(token) if token else None
        if not name:
            self.write_json(403, {'status': 403, 'message': 'Forbidden'})
            return
        self.write_json(
            200,
            {
                'kind': 'user',
                'name': name,
                'admin': False,
                'groups': [],
                'scopes': [f'read:users:name!user={name}'],
                'session_id': None,
            },
        )


class StatsHandler(_Json):
    def get(self) -> None:
        counts = self.application.settings['counts']
        self.write_json(
            200, {'user_requests': sum(counts.values()), 'by_token': dict(counts)}
        )


class LoginHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header('Content-Type', 'text/html; charset=UTF-8')
        self.finish('<!DOCTYPE html><title>Hub login</title><p>Hub stub login</p>')


def make_app() -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r'/hub/api/user', UserHandler),
            (r'/stub/stats', StatsHandler),
            (r'/hub/login', LoginHandler),
            (r'/hub/api/oauth2/authorize', LoginHandler),
        ],
        counts=collections.Counter(),
    )


async def serve(port: int) -> None:
    make_app().listen(port, address='127.0.0.1')
    print(f'READY {port}', flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == '__main__':
    main()
