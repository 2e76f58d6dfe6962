"""What every handler does the same way.

A request is: authenticate (``prepare``), read the documented arguments,
run one operation in the worker pool, answer. Every answer, including
404, 405 and unexpected failures, is the documented JSON envelope; a stack
trace never reaches a client unless the server runs in debug mode.
"""

from __future__ import annotations

import json
import logging
import traceback
from functools import partial
from http import HTTPStatus

from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler

from ..auth import LOGIN_REQUIRED
from ..errors import ApiError
from ..logsafe import redact
from ..operations.runner import run_operation
from ..permissions import Actor
from ..runtime import Runtime

log = logging.getLogger('ngshare.handlers')

_HTTP_METHODS = ('GET', 'HEAD', 'POST', 'DELETE', 'PATCH', 'PUT', 'OPTIONS')


class BaseHandler(RequestHandler):
    """JSON envelope, authentication and the worker pool."""

    # Whether an anonymous request is refused before the method runs.
    login_required = True
    actor: Actor | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if 'SUPPORTED_METHODS' in cls.__dict__:
            return
        # Methods a handler does not define answer 405 before any
        # authentication, as JSON (see write_error).
        cls.SUPPORTED_METHODS = tuple(
            method
            for method in _HTTP_METHODS
            if getattr(cls, method.lower())
            is not getattr(RequestHandler, method.lower())
        )

    def initialize(self, runtime: Runtime):
        self.runtime = runtime

    @property
    def config(self):
        return self.runtime.config

    def set_default_headers(self):
        self.set_header('Content-Type', 'application/json; charset=UTF-8')
        self.set_header('Cache-Control', 'no-store')

    async def prepare(self):
        self.actor = await self.runtime.authenticator.identify(self)
        if self.actor is None and self.login_required:
            self.refuse_anonymous()

    def refuse_anonymous(self):
        """Browsers go to the Hub login; API clients get a JSON refusal."""
        target = None
        if self.request.method in ('GET', 'HEAD'):
            target = self.runtime.authenticator.login_redirect(self)
        if target:
            self.set_status(302)
            self.set_header('Location', target)
        else:
            self.set_status(401)
        self.finish(json.dumps({'success': False, 'message': LOGIN_REQUIRED}))

    # Arguments

    def arg(self, name: str) -> str | None:
        """A query parameter or form field; None when absent."""
        return self.get_argument(name, None, strip=False)

    def list_only(self) -> bool:
        return self.get_argument('list_only', 'false') == 'true'

    # Running operations

    async def run(self, operation, *args, write: bool = False) -> dict:
        return await IOLoop.current().run_in_executor(
            self.runtime.pool,
            partial(
                run_operation, self.runtime, self.actor, operation, args, write=write
            ),
        )

    async def answer(self, operation, *args, write: bool = False) -> None:
        """Run ``operation`` and reply with its fields on success."""
        fields = await self.run(operation, *args, write=write)
        self.finish(json.dumps({'success': True, **fields}))

    # Logging: URIs are redacted so a token in a query string never reaches a log.

    def _request_summary(self) -> str:
        request = self.request
        return f'{request.method} {redact(request.uri)} ({request.remote_ip})'

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, HTTPError):
            super().log_exception(typ, value, tb)
            return
        log.error(
            'Uncaught exception %s', self._request_summary(), exc_info=(typ, value, tb)
        )

    # Errors

    def _handle_request_exception(self, error: BaseException) -> None:
        if isinstance(error, ApiError):
            if not self._finished:
                self.send_error(error.status, api_error=error)
            return
        super()._handle_request_exception(error)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header('Content-Type', 'application/json; charset=UTF-8')
        api_error = kwargs.get('api_error')
        if api_error is not None:
            message = api_error.message
        elif status_code >= 500:
            message = 'Internal server error'
            exc_info = kwargs.get('exc_info')
            if self.config.debug and exc_info:
                message += ': ' + ''.join(traceback.format_exception(*exc_info))
        else:
            exc_info = kwargs.get('exc_info')
            error = exc_info[1] if exc_info else None
            if isinstance(error, HTTPError) and error.reason:
                message = error.reason
            else:
                message = HTTPStatus(status_code).phrase
        self.finish(json.dumps({'success': False, 'message': message}))


class NotFoundHandler(BaseHandler):
    """Every path that no route matches: JSON 404, whatever the method."""

    login_required = False
    SUPPORTED_METHODS = _HTTP_METHODS

    async def prepare(self):
        raise ApiError(404, 'Not Found')
