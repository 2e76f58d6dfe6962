"""Who is calling: Hub token authentication, and the stand-alone mode.

Under JupyterHub the caller is the owner of the token in
``Authorization: token ...`` (or, for a browser, of the OAuth cookie set
after the Hub login), resolved by JupyterHub's own
:class:`~jupyterhub.services.auth.HubOAuth` with its asynchronous API and its
cache (``--auth-cache-seconds``; refusals are cached too), so the event loop
never waits on the Hub and a token is looked up once per cache period. Every
lookup is bounded by ``--hub-timeout``: a frozen Hub gives 503, not a hung
request. Whether the token may act here at all is
:mod:`ngshare.token_rules`: meant for ngshare, or the user's own; Hub
services only when trusted. ngshare then authorizes by its own course roles.

In stand-alone mode (``--vngshare``) the caller names themself with the
``user`` parameter; a request without it may still be identified by its
token when a Hub API is configured, because the nbgrader exchange plugin
sends ``user`` only on some requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus

from jupyterhub.services.auth import HubAuth, HubOAuth, HubOAuthCallbackHandler
from tornado.httputil import url_concat
from tornado.web import HTTPError, RequestHandler

from .actor import Actor
from .config import Config
from .errors import ApiError
from .logsafe import redact
from .token_rules import accepted_name, plausible_token

log = logging.getLogger('ngshare.auth')

LOGIN_REQUIRED = 'Login required'
INVALID_TOKEN = 'Invalid token'  # noqa: S105 (a message)
HUB_UNAVAILABLE = 'Hub unavailable'
# The browser login cookie and the OAuth state cookie: not sent on cross-site
# subrequests (forms, images, fetch), still sent when following a link.
COOKIE_OPTIONS = {'samesite': 'Lax'}


class Authenticator:
    """Turns a request into an :class:`Actor`, or None when anonymous."""

    # Whether identify() may need the request body (the stand-alone ``user``
    # form field). When False, identify() reads only headers, cookies and
    # the query, so handlers may call it from prepare(), before the body.
    identifies_from_body = False

    def __init__(self, config: Config):
        self.admins = config.admins

    def actor(self, name: str) -> Actor:
        return Actor(name=name, is_admin=name in self.admins)

    async def identify(self, handler: RequestHandler) -> Actor | None:
        raise NotImplementedError

    def login_redirect(self, handler: RequestHandler) -> str | None:
        """Where to send an anonymous browser, if anywhere."""
        return None


def _never_cache(hub_auth: HubAuth) -> None:
    """``--auth-cache-seconds 0``: ask the Hub every time.

    HubAuth takes a cache period of 0 to mean *forever*; its cache is
    replaced by one of the same type that keeps nothing.
    """

    class NeverKept(type(hub_auth.cache)):
        def __setitem__(self, key, value) -> None:
            pass

    hub_auth.cache = NeverKept()


class HubLookup:
    """One Hub (through a HubAuth), the token rule and the time bound."""

    def __init__(self, hub_auth: HubAuth, config: Config):
        self.hub_auth = hub_auth
        self.timeout = config.hub_timeout
        self.service_name = config.service_name
        self.strict = config.strict_token_scopes
        self.trusted_services = config.trusted_services
        if config.auth_cache_seconds <= 0:
            _never_cache(hub_auth)

    async def bounded(self, awaitable, what: str):
        """``awaitable`` (a Hub request), or 503 after ``--hub-timeout``."""
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError:
            log.error('The Hub did not answer within %ss (%s)', self.timeout, what)
        except HTTPError as error:
            log.error('Cannot check a %s with the Hub: %s', what, error.log_message)
        raise ApiError(503, HUB_UNAVAILABLE)

    def accepted(self, model: dict | None) -> str | None:
        name = accepted_name(
            model,
            service_name=self.service_name,
            strict=self.strict,
            trusted_services=self.trusted_services,
        )
        if model and name is None:
            log.warning(
                'Refused a token of %s %r: not meant for %s (scopes %s)',
                model.get('kind'),
                model.get('name'),
                self.service_name,
                model.get('scopes'),
            )
        return name

    async def token_owner(self, token: str) -> str:
        """The name a header token acts under; 403 or 503 otherwise.

        A token that cannot be a Hub token is refused without a lookup. The
        cache key is the token alone (no session id: the Hub ignores it), so
        a refused token, cached as None by HubAuth, costs one lookup per
        cache period whatever cookies come with it.
        """
        if not plausible_token(token):
            raise ApiError(403, INVALID_TOKEN)
        model = await self.bounded(
            self.hub_auth.user_for_token(token, session_id='', sync=False), 'token'
        )
        name = self.accepted(model)
        if name is None:
            raise ApiError(403, INVALID_TOKEN)
        return name

    async def cookie_owner(self, handler: RequestHandler) -> str | None:
        """The name of a browser's OAuth cookie; None without one."""
        model = await self.bounded(
            self.hub_auth.get_user(handler, sync=False), 'cookie'
        )
        if not model:
            return None
        name = self.accepted(model)
        if name is None:
            raise ApiError(403, INVALID_TOKEN)
        return name


class HubAuthenticator(Authenticator):
    """A JupyterHub-managed (or external) service."""

    def __init__(self, config: Config):
        super().__init__(config)
        self.hub_auth = HubOAuth(
            api_url=config.hub_api_url,
            api_token=config.hub_api_token,
            base_url=config.prefix,
            hub_prefix=config.hub_prefix,
            hub_host=config.hub_host,
            oauth_client_id=config.oauth_client_id,
            oauth_redirect_uri=config.oauth_redirect_uri,
            cache_max_age=config.auth_cache_seconds,
            access_scopes=set(),
        )
        # $JUPYTERHUB_COOKIE_OPTIONS (read by HubOAuth) may still override.
        self.hub_auth.cookie_options = {
            **COOKIE_OPTIONS,
            **self.hub_auth.cookie_options,
        }
        # The callback handler finds its bound here (it is given hub_auth).
        self.hub_auth.ngshare_lookup = self.lookup = HubLookup(self.hub_auth, config)

    async def identify(self, handler: RequestHandler) -> Actor | None:
        """Headers, cookies and query only: usable before the body."""
        token = self.hub_auth.get_token(handler, in_cookie=False)
        if token:
            return self.actor(await self.lookup.token_owner(token))
        name = await self.lookup.cookie_owner(handler)
        return self.actor(name) if name else None

    def login_redirect(self, handler: RequestHandler) -> str | None:
        """The Hub's OAuth authorize URL, with fresh state (and PKCE)."""
        params = {}
        code_verifier = None
        if self.hub_auth.pkce_enabled:
            code_verifier, challenge, method = (
                self.hub_auth.generate_pkce_code_challenge()
            )
            params['code_challenge'] = challenge
            params['code_challenge_method'] = method
        params['state'] = self.hub_auth.set_state_cookie(
            handler, next_url=handler.request.uri, code_verifier=code_verifier
        )
        return url_concat(self.hub_auth.login_url, params)


class StandaloneAuthenticator(Authenticator):
    """``--vngshare``: trust the ``user`` parameter; never use in production."""

    identifies_from_body = True

    def __init__(self, config: Config):
        super().__init__(config)
        self.lookup = None
        if config.hub_api_url:
            hub_auth = HubAuth(
                api_url=config.hub_api_url,
                api_token=config.hub_api_token,
                cache_max_age=config.auth_cache_seconds,
                access_scopes=set(),
            )
            self.lookup = HubLookup(hub_auth, config)

    async def identify(self, handler: RequestHandler) -> Actor | None:
        name = handler.get_argument('user', None)
        if name:
            return self.actor(name)
        if self.lookup is not None:
            token = self.lookup.hub_auth.get_token(handler, in_cookie=False)
            if token:
                return self.actor(await self.lookup.token_owner(token))
        return None


def make_authenticator(config: Config) -> Authenticator:
    if config.vngshare:
        return StandaloneAuthenticator(config)
    return HubAuthenticator(config)


# Hub failures of the code exchange that mean "this code is no good" (the
# Hub answered 4xx, or the new token identifies nobody) rather than "the Hub
# is unavailable"; the messages are HubOAuth's own.
_REFUSED_LOGIN = ('Failed to check authorization', 'oauth callback failed')


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """Completes the Hub's OAuth login of a browser (welcome and dump pages).

    JupyterHub's handler, with ngshare's manners: GET only (any other
    method is a JSON 405), every error a JSON envelope, the Hub bounded by
    ``--hub-timeout`` per request to it, and no code or state in the logs.
    """

    SUPPORTED_METHODS = ('GET',)

    def initialize(self, hub_auth: HubOAuth):
        self.hub_auth = hub_auth

    @property
    def lookup(self) -> HubLookup:
        return self.hub_auth.ngshare_lookup

    async def prepare(self):
        # On a stale state JupyterHub's get() asks self.current_user, which
        # HubAuthenticated resolves synchronously, blocking the event loop on
        # the Hub: resolve it here, asynchronously and bounded, instead.
        self._hub_auth_user_cache = await self.lookup.bounded(
            self.hub_auth.get_user(self, sync=False), 'cookie'
        )

    async def get(self):
        # Two Hub requests: the code exchange, then who the new token is.
        try:
            await asyncio.wait_for(super().get(), 2 * self.lookup.timeout)
        except asyncio.TimeoutError:
            log.error('The Hub did not answer within %ss (login)', self.lookup.timeout)
            raise ApiError(503, HUB_UNAVAILABLE) from None
        except ApiError:
            raise
        except HTTPError as error:
            if error.status_code < 500:
                raise
            log.error('OAuth login failed at the Hub: %s', error.log_message)
            if (error.log_message or '').startswith(_REFUSED_LOGIN):
                raise ApiError(400, 'OAuth login failed') from None
            raise ApiError(503, HUB_UNAVAILABLE) from None

    def _request_summary(self) -> str:
        request = self.request
        return f'{request.method} {redact(request.uri)} ({request.remote_ip})'

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header('Content-Type', 'application/json; charset=UTF-8')
        if status_code == 405:
            self.set_header('Allow', 'GET')
        exc_info = kwargs.get('exc_info')
        error = exc_info[1] if exc_info else None
        if isinstance(error, ApiError):
            message = error.message
        elif status_code < 500 and isinstance(error, HTTPError) and error.log_message:
            message = (
                error.log_message % error.args if error.args else error.log_message
            )
        elif status_code >= 500:
            message = 'Internal server error'
        else:
            message = HTTPStatus(status_code).phrase
        self.finish(json.dumps({'success': False, 'message': message}))
