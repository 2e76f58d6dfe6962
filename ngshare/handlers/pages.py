"""Pages for people and probes: welcome page, favicon, /healthz, debug actions."""

from __future__ import annotations

import json

from ..errors import ApiError, permission_denied
from ..operations import debug
from ..version import __version__
from .base import BaseHandler


class HealthHandler(BaseHandler):
    """Liveness probe: answers without authentication, database or disk."""

    identifies_caller = False

    def get(self):
        self.finish(json.dumps({'success': True}))


class FaviconHandler(BaseHandler):
    identifies_caller = False

    def get(self):
        self.set_header('Content-Type', 'image/svg+xml')
        self.set_header('Cache-Control', 'public, max-age=86400')
        self.render('favicon.svg')


class HomeHandler(BaseHandler):
    """The welcome page; shows the debug actions to those who may use them.

    Under the Hub a visitor is sent through the Hub's login first (as the
    "Services -> ngshare" link of the Control Panel expects: the page greets
    the user). Stand-alone, anyone may look; the page explains ``user``.
    """

    @property
    def login_required(self):
        return not self.config.vngshare

    def get(self):
        self.set_header('Content-Type', 'text/html; charset=UTF-8')
        actor = self.actor
        may_dump = actor is not None and (actor.is_admin or self.config.debug)
        self.render(
            'home.html',
            actor=actor,
            prefix=self.config.prefix,
            debug=self.config.debug,
            vngshare=self.config.vngshare,
            may_dump=may_dump,
            may_change=actor is not None and self.config.debug,
            version=__version__,
        )


class DebugHandler(BaseHandler):
    """``initialize-Data6ase?action=dump|clear|init``.

    Dumping is for admins, or anyone in debug mode; clearing and loading
    sample data run only in debug mode, whoever asks.
    """

    async def get(self):
        action = self.get_argument('action', '')
        if action == 'dump':
            if not (self.actor.is_admin or self.config.debug):
                raise permission_denied()
            tables = await self.run(debug.dump)
            if self.get_argument('human-readable', 'false') == 'true':
                self.set_header('Content-Type', 'text/html; charset=UTF-8')
                self.render('dump.html', tables=tables, prefix=self.config.prefix)
            else:
                self.finish(json.dumps({'success': True, **tables}))
        elif action in ('clear', 'init'):
            if not self.config.debug:
                raise permission_denied()
            operation = debug.clear if action == 'clear' else debug.init
            await self.answer(operation, write=True)
        else:
            raise ApiError(400, 'Unknown action')
