"""Who is calling: Hub token authentication, and the stand-alone mode.

Under JupyterHub the caller is the owner of the token in
``Authorization: token ...`` (or, for a browser, of the OAuth cookie set
after the Hub login), resolved by JupyterHub's own
:class:`~jupyterhub.services.auth.HubOAuth` with its asynchronous API and its
cache, so the event loop never waits on the Hub and a token is looked up
once per cache period. Only the identity is used: ngshare authorizes by its
own course roles, so the token of a stock single-user server, which carries
no ``access:services`` scope, is enough.

In stand-alone mode (``--vngshare``) the caller names themself with the
``user`` parameter; a request without it may still be identified by its
token when a Hub API is configured, because the nbgrader exchange plugin
sends ``user`` only on some requests.
"""

from __future__ import annotations

import logging

from jupyterhub.services.auth import HubAuth, HubOAuth, HubOAuthCallbackHandler
from tornado.httputil import url_concat
from tornado.web import HTTPError, RequestHandler

from .config import Config
from .errors import ApiError
from .permissions import Actor

log = logging.getLogger('ngshare.auth')

LOGIN_REQUIRED = 'Login required'


class Authenticator:
    """Turns a request into an :class:`Actor`, or None when anonymous."""

    def __init__(self, config: Config):
        self.admins = config.admins

    def actor(self, name: str) -> Actor:
        return Actor(name=name, is_admin=name in self.admins)

    async def identify(self, handler: RequestHandler) -> Actor | None:
        raise NotImplementedError

    def login_redirect(self, handler: RequestHandler) -> str | None:
        """Where to send an anonymous browser, if anywhere."""
        return None


async def _user_for_token(hub_auth: HubAuth, handler: RequestHandler, token: str):
    try:
        model = await hub_auth.user_for_token(
            token, session_id=hub_auth.get_session_id(handler), sync=False
        )
    except HTTPError as error:
        log.error('Cannot check a token with the Hub: %s', error.log_message)
        raise ApiError(503, 'Hub unavailable') from None
    if not model or not model.get('name'):
        raise ApiError(403, 'Invalid token')
    return model['name']


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

    async def identify(self, handler: RequestHandler) -> Actor | None:
        token = self.hub_auth.get_token(handler, in_cookie=False)
        if token:
            return self.actor(await _user_for_token(self.hub_auth, handler, token))
        try:
            model = await self.hub_auth.get_user(handler, sync=False)
        except HTTPError as error:
            log.error('Cannot check a cookie with the Hub: %s', error.log_message)
            raise ApiError(503, 'Hub unavailable') from None
        return self.actor(model['name']) if model else None

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

    def __init__(self, config: Config):
        super().__init__(config)
        self.hub_auth = (
            HubAuth(
                api_url=config.hub_api_url,
                api_token=config.hub_api_token,
                cache_max_age=config.auth_cache_seconds,
                access_scopes=set(),
            )
            if config.hub_api_url
            else None
        )

    async def identify(self, handler: RequestHandler) -> Actor | None:
        name = handler.get_argument('user', None)
        if name:
            return self.actor(name)
        if self.hub_auth is not None:
            token = self.hub_auth.get_token(handler, in_cookie=False)
            if token:
                return self.actor(await _user_for_token(self.hub_auth, handler, token))
        return None


def make_authenticator(config: Config) -> Authenticator:
    if config.vngshare:
        return StandaloneAuthenticator(config)
    return HubAuthenticator(config)


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """Completes the Hub's OAuth login of a browser (welcome and dump pages)."""

    def initialize(self, hub_auth: HubOAuth):
        self.hub_auth = hub_auth
