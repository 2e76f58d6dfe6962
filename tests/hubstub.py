"""A tiny stand-in for the parts of the JupyterHub API that ngshare uses.

Run as ``python tests/hubstub.py --port P``. It listens on 127.0.0.1 only
and prints ``READY <port>`` once it accepts connections.

* ``GET /hub/api/user`` identifies the token of ``Authorization: token T``
  (or ``bearer T``) as JupyterHub does, with the token's expanded
  ``scopes``. The token forms (``HEX`` is the hex of the UTF-8 user name;
  helpers below make them):

  ``tok-HEX`` (:func:`token_for`)
      that user's own single-user server token, as on JupyterHub 4-6:
      ``users:activity!user=NAME``, ``access:servers!server=NAME/`` and the
      identify scopes; no ``access:services``.
  ``oauth.SERVICE.HEX`` (:func:`oauth_token_for`)
      an OAuth token the Hub issued to service SERVICE for the user:
      ``access:services!service=SERVICE`` and the identify scopes. The
      OAuth exchange below issues these (``ngshare`` for ngshare's login).
  ``server.OWNERHEX.HEX`` (:func:`server_oauth_token_for`)
      an OAuth token issued to OWNER's single-user server for the user (who
      opened it): ``access:servers!server=OWNER/`` and the identify scopes.
  ``bare-HEX`` (:func:`bare_token_for`)
      a token with no scopes but the identify ones.
  ``svc-HEX`` (:func:`service_token_for`)
      the token of a Hub *service* of that name (``kind: service``).

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


def _hex(name: str) -> str:
    return name.encode('utf-8').hex()


def _unhex(text: str) -> str | None:
    try:
        return bytes.fromhex(text).decode('utf-8') or None
    except ValueError:
        return None


def token_for(name: str) -> str:
    """The single-user server token of user ``name``."""
    return TOKEN_PREFIX + _hex(name)


def oauth_token_for(name: str, service: str) -> str:
    """An OAuth token issued to ``service`` for user ``name``."""
    return f'oauth.{service}.{_hex(name)}'


def server_oauth_token_for(name: str, owner: str) -> str:
    """An OAuth token issued to ``owner``'s server for user ``name``."""
    return f'server.{_hex(owner)}.{_hex(name)}'


def bare_token_for(name: str) -> str:
    """A token of user ``name`` with only the identify scopes."""
    return 'bare-' + _hex(name)


def service_token_for(name: str) -> str:
    """The API token of the Hub service ``name``."""
    return 'svc-' + _hex(name)


def name_for(token: str) -> str | None:
    """The user name of a server token (``tok-HEX``), else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    return _unhex(token[len(TOKEN_PREFIX) :])


def identify_scopes(name: str) -> list[str]:
    return [f'read:users:name!user={name}', f'read:users:groups!user={name}']


def model_for(token: str) -> dict | None:
    """The Hub's answer for ``token`` (see the module docstring), or None."""
    kind, parts = 'user', token.split('.')
    if token.startswith(TOKEN_PREFIX):
        name = name_for(token)
        scopes = [f'users:activity!user={name}', f'access:servers!server={name}/']
    elif token.startswith('bare-'):
        name, scopes = _unhex(token[len('bare-') :]), []
    elif token.startswith('svc-'):
        kind, name, scopes = 'service', _unhex(token[len('svc-') :]), []
    elif len(parts) == 3 and parts[0] == 'oauth' and parts[1]:
        name, scopes = _unhex(parts[2]), [f'access:services!service={parts[1]}']
    elif len(parts) == 3 and parts[0] == 'server' and _unhex(parts[1]):
        name = _unhex(parts[2])
        scopes = [f'access:servers!server={_unhex(parts[1])}/']
    else:
        return None
    if not name:
        return None
    if kind == 'service':
        return {'kind': 'service', 'name': name, 'roles': [], 'scopes': scopes}
    return {
        'kind': 'user',
        'name': name,
        'admin': False,
        'groups': [],
        'scopes': scopes + identify_scopes(name),
        'session_id': None,
    }


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
        model = model_for(token) if token else None
        if model is None:
            self.write_json(403, {'status': 403, 'message': 'Forbidden'})
            return
        self.write_json(200, model)


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
            client = grant['client_id']
            service = (
                client[len('service-') :] if client.startswith('service-') else client
            )
            self.write_json(
                200,
                {
                    'access_token': oauth_token_for(grant['name'], service),
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
