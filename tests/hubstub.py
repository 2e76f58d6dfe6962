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
* ``GET /hub/login`` answers a small HTML page (a login redirect target).
* OAuth, as the Hub does it for a service's browser login:
  ``GET /hub/api/oauth2/authorize?client_id&redirect_uri&state
  [&code_challenge&code_challenge_method]`` answers the login page, or,
  with the test-only parameter ``login_as=NAME`` (the user "logging in"),
  redirects to ``redirect_uri?code=...&state=...``. ``POST
  /hub/api/oauth2/token`` exchanges such a code (once; checking client id,
  ``--client-secret`` if given, redirect URI and the PKCE verifier) for
  that user's token.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import hashlib
import json
import re
import secrets
import urllib.parse

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
            200,
            {
                'user_requests': sum(counts.values()),
                'by_token': dict(counts),
                'token_exchanges': self.application.settings['exchanges'][0],
            },
        )


class AuthorizeHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        name = self.get_argument('login_as', None)
        if name is None:
            LoginHandler.get(self)
            return
        if self.get_argument('response_type', '') != 'code':
            raise tornado.web.HTTPError(400, 'response_type must be code')
        code = 'code-' + secrets.token_hex(8)
        redirect_uri = self.get_argument('redirect_uri')
        self.application.settings['codes'][code] = {
            'name': name,
            'client_id': self.get_argument('client_id'),
            'redirect_uri': redirect_uri,
            'challenge': self.get_argument('code_challenge', None),
            'method': self.get_argument('code_challenge_method', 'plain'),
        }
        query = urllib.parse.urlencode(
            {'code': code, 'state': self.get_argument('state')}
        )
        self.redirect(redirect_uri + ('&' if '?' in redirect_uri else '?') + query)


def _pkce_ok(grant: dict, verifier: str | None) -> bool:
    if grant['challenge'] is None:
        return True
    if not verifier:
        return False
    if grant['method'] == 'S256':
        digest = hashlib.sha256(verifier.encode('ascii')).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b'=').decode('ascii')
        return expected == grant['challenge']
    return verifier == grant['challenge']


class TokenHandler(_Json):
    def post(self) -> None:
        def refuse(why: str) -> None:
            self.write_json(400, {'error': 'invalid_grant', 'error_description': why})

        codes = self.application.settings['codes']
        grant = codes.pop(self.get_argument('code', ''), None)
        secret = self.application.settings['client_secret']
        if self.get_argument('grant_type', '') != 'authorization_code':
            refuse('unsupported grant_type')
        elif grant is None:
            refuse('unknown or used code')
        elif self.get_argument('client_id', '') != grant['client_id']:
            refuse('client_id does not match')
        elif secret is not None and self.get_argument('client_secret', '') != secret:
            refuse('wrong client_secret')
        elif self.get_argument('redirect_uri', '') != grant['redirect_uri']:
            refuse('redirect_uri does not match')
        elif not _pkce_ok(grant, self.get_argument('code_verifier', None)):
            refuse('PKCE verification failed')
        else:
            self.application.settings['exchanges'][0] += 1
            self.write_json(
                200,
                {
                    'access_token': token_for(grant['name']),
                    'token_type': 'Bearer',
                    'scope': 'identify',
                },
            )


class LoginHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header('Content-Type', 'text/html; charset=UTF-8')
        self.finish('<!DOCTYPE html><title>Hub login</title><p>Hub stub login</p>')


def make_app(client_secret: str | None = None) -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r'/hub/api/user', UserHandler),
            (r'/stub/stats', StatsHandler),
            (r'/hub/login', LoginHandler),
            (r'/hub/api/oauth2/authorize', AuthorizeHandler),
            (r'/hub/api/oauth2/token', TokenHandler),
        ],
        counts=collections.Counter(),
        codes={},
        exchanges=[0],
        client_secret=client_secret,
    )


async def serve(port: int, client_secret: str | None) -> None:
    make_app(client_secret).listen(port, address='127.0.0.1')
    print(f'READY {port}', flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--client-secret', default=None)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.client_secret))


if __name__ == '__main__':
    main()
