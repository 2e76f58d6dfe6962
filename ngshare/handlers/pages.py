"""Pages for people and probes: welcome page, favicon, /healthz, debug actions.

The two HTML pages (welcome page, human-readable dump) use no script, and
say so to the browser: their Content-Security-Policy allows only their
inline style sheet, the favicon, and forms posting back here, and no page
may frame them.

The destructive debug actions (``clear``, ``init``) change the database, so
under the Hub a browser's login cookie alone must not trigger them: a
cross-site link or redirect is a top-level GET, and the browser sends the
cookie with it (``SameSite=Lax`` allows that). A GET runs them only for a
caller who presented a token (API clients), as documented; the welcome
page's buttons are forms that POST with the XSRF token instead.
"""

from __future__ import annotations

import json
import logging

from tornado.web import HTTPError

from ..errors import ApiError, permission_denied
from ..operations import debug
from ..permissions import (
    may_change_data,
    may_dump,
    require_may_change_data,
    require_may_dump,
)
from ..version import __version__
from .base import BaseHandler, after_body

log = logging.getLogger('ngshare.handlers')

# What the templates need: their own <style> element, the favicon, forms
# that post to this server. No script, no frame, no other origin.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
CHANGING_ACTIONS = ('clear', 'init')
# 0.6.0's answer to a GET with another action (scripts may compare it).
UNKNOWN_GET_ACTION = 'action should be clear, init, or dump'


class PageHandler(BaseHandler):
    """A handler that may answer an HTML page."""

    def render_page(self, template: str, **kwargs) -> None:
        """Answer an HTML page (nosniff and X-Frame-Options come from base)."""
        self.set_header('Content-Type', 'text/html; charset=UTF-8')
        self.set_header('Content-Security-Policy', PAGE_CSP)
        self.render(template, **kwargs)

    def token_presented(self) -> bool:
        """Whether the caller was identified by a token, not by a cookie.

        Under the Hub the authenticator uses the token of the request
        (``Authorization`` header or ``token`` parameter) whenever there is
        one, and the login cookie only otherwise.
        """
        hub_auth = getattr(self.runtime.authenticator, 'hub_auth', None)
        return bool(hub_auth is not None and hub_auth.get_token(self, in_cookie=False))


class HealthHandler(BaseHandler):
    """Liveness probe: answers without authentication, database or disk."""

    identifies_caller = False

    @after_body
    def get(self):
        self.finish(json.dumps({'success': True}))


class FaviconHandler(BaseHandler):
    identifies_caller = False

    @after_body
    def get(self):
        self.set_header('Content-Type', 'image/svg+xml')
        self.set_header('Cache-Control', 'public, max-age=86400')
        self.render('favicon.svg')


class RootRedirectHandler(BaseHandler):
    """Stand-alone, ``/`` is not the API: send the visitor to the welcome page.

    A temporary redirect (the prefix is a flag) that keeps the query, so
    ``/?user=root`` opens the page as root. Other methods get the JSON 405.
    """

    identifies_caller = False

    @after_body
    def get(self):
        url = self.config.prefix
        if self.request.query:
            url += '?' + self.request.query
        self.redirect(url)


class HomeHandler(PageHandler):
    """The welcome page; shows the debug actions to those who may use them.

    Under the Hub a visitor is sent through the Hub's login first (as the
    "Services -> ngshare" link of the Control Panel expects: the page greets
    the user). Stand-alone, anyone may look; the page explains ``user``.
    """

    @property
    def login_required(self):
        return not self.config.vngshare

    def api_url(self) -> str:
        """The prefix as an absolute URL, as this request reached us.

        The host is the request's ``Host`` (under the Hub, the proxy passes
        the browser's on); the scheme and client address come from
        ``X-Forwarded-*`` only for ``--trusted-proxies``, so a curl example
        copied from the page works from where the page was read.
        """
        return f'{self.request.protocol}://{self.request.host}{self.config.prefix}'

    @after_body
    def get(self):
        actor = self.actor
        may_change = may_change_data(actor, self.config.debug)
        self.render_page(
            'home.html',
            actor=actor,
            prefix=self.config.prefix,
            api_url=self.api_url(),
            debug=self.config.debug,
            vngshare=self.config.vngshare,
            may_dump=may_dump(actor, self.config.debug),
            may_change=may_change,
            # Sent in the forms' query string: under the Hub the caller is
            # identified (and the XSRF token checked) before the body is read.
            xsrf=self.xsrf_token.decode('ascii') if may_change else '',
            version=__version__,
        )


class DebugHandler(PageHandler):
    """``initialize-Data6ase?action=dump|clear|init``.

    Dumping is for admins, or anyone in debug mode; clearing and loading
    sample data run only in debug mode, whoever asks: by GET for a caller
    with a token (or stand-alone), by POST with the XSRF token of the
    welcome page for a browser.
    """

    @after_body
    async def get(self):
        action = self.get_argument('action', '')
        if action == 'dump':
            require_may_dump(self.actor, self.config.debug)
            tables = await self.run(debug.dump)
            if self.get_argument('human-readable', 'false') == 'true':
                self.render_page('dump.html', tables=tables, prefix=self.config.prefix)
            else:
                self.finish(json.dumps({'success': True, **tables}))
        elif action in CHANGING_ACTIONS:
            require_may_change_data(self.actor, self.config.debug)
            if not self.config.vngshare and not self.token_presented():
                # The login cookie alone: maybe a cross-site navigation.
                log.warning(
                    'Refused %s by GET with only the login cookie (%s): the'
                    ' welcome page POSTs it with the XSRF token',
                    action,
                    self.actor.name,
                )
                raise permission_denied()
            await self.change(action)
        else:
            raise ApiError(400, UNKNOWN_GET_ACTION)

    @after_body
    async def post(self):
        action = self.get_argument('action', '')
        if action not in CHANGING_ACTIONS:
            raise ApiError(400, 'Unknown action')
        require_may_change_data(self.actor, self.config.debug)
        if not self.token_presented():
            try:
                self.check_xsrf_cookie()
            except HTTPError as error:
                log.warning('Refused %s: %s', action, error.log_message)
                raise permission_denied() from None
        await self.change(action)

    async def change(self, action: str) -> None:
        operation = debug.clear if action == 'clear' else debug.init
        await self.answer(operation, write=True)
