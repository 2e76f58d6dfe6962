"""Every error answer as the documented JSON envelope, and its log line.

``{"success": false, "message": ...}`` for every refusal and failure, with
no stack trace unless the server runs in debug mode; a mixin of
:class:`~.base.BaseHandler` (which defines ``config``).
"""

from __future__ import annotations

import json
import logging
import traceback
from http import HTTPStatus

from tornado.web import HTTPError, RequestHandler

from ..errors import ApiError
from ..logsafe import redact

log = logging.getLogger('ngshare.handlers')

__all__ = ['JsonErrors']


class JsonErrors(RequestHandler):
    """Error answers and the logging of uncaught exceptions."""

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

    # Errors: an ApiError raised by a handler method (or by an operation it
    # runs) reaches write_error through Tornado's own handling, which logs
    # nothing for it (it has no log_message) and sends the error.

    def send_api_error(self, error: ApiError) -> None:
        """Answer ``error`` now: a refusal before or during the body.

        Not raised, since Tornado is still receiving the request."""
        self.send_error(
            error.status_code, exc_info=(type(error), error, error.__traceback__)
        )

    def write_error(self, status_code: int, **kwargs) -> None:
        """The JSON envelope for every error answer (as JupyterHub's APIHandler)."""
        self.set_header('Content-Type', 'application/json; charset=UTF-8')
        exc_info = kwargs.get('exc_info')
        error = exc_info[1] if exc_info else None
        if isinstance(error, ApiError):
            message = error.message_for(self.config.debug)
            for name, value in error.headers.items():
                self.set_header(name, value)
        elif status_code >= 500:
            message = 'Internal server error'
            if self.config.debug and exc_info:
                message += ': ' + ''.join(traceback.format_exception(*exc_info))
        elif isinstance(error, HTTPError) and error.reason:
            message = error.reason
        else:
            message = HTTPStatus(status_code).phrase
        self.finish(json.dumps({'success': False, 'message': message}))
