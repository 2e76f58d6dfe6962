"""The one way a request fails on purpose.

Handlers and operations raise :class:`ApiError`; it is a Tornado
:class:`~tornado.web.HTTPError`, so Tornado's own request machinery catches
it and hands it to the base handler's ``write_error`` (as JupyterHub's
``APIHandler`` renders its errors), which writes the documented
``{"success": false, "message": ...}`` answer. The messages are part of the
API contract: clients compare them as strings.

A refusal may carry a ``reason`` (``not admin``, ``not course instructor``,
...): the documented message stays the same, and only in debug mode ("more
helpful error messages", as 0.6.0 did) does the answer add it in
parentheses, ``Permission denied (not admin)``. The reason is data, not a
rewritten string, so production answers cannot change by accident. It is
kept as :attr:`ApiError.detail`, not in ``HTTPError.reason``, which Tornado
would put on the status line.

An ``ApiError`` has no ``log_message``, so Tornado logs nothing for it: a
refusal is logged once, by the access log, as before.
"""

from __future__ import annotations

from tornado.web import HTTPError

# A body (or its framing) that cannot be read as a form: refused by the body
# readers (``handlers``) and by the tree checks (``filetree``) alike.
INVALID_BODY = 'Invalid request body'


class ApiError(HTTPError):
    """A refusal with an HTTP status, a documented message and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        # No log_message (nothing logged by Tornado), no HTTPError.reason
        # (the status line keeps the standard phrase).
        super().__init__(status)
        self.message = message
        self.detail = reason
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return self.status_code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.status_code}, {self.message!r})'

    def message_for(self, debug: bool) -> str:
        """The answer's message: with the reason in debug mode only."""
        if debug and self.detail:
            return f'{self.message} ({self.detail})'
        return self.message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


PERMISSION_DENIED = 'Permission denied'


def permission_denied(reason: str | None = None) -> ApiError:
    """403 ``Permission denied``; ``reason`` is shown in debug mode only."""
    return ApiError(403, PERMISSION_DENIED, reason=reason)
