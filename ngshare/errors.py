"""The one way a request fails on purpose.

Handlers and operations raise :class:`ApiError`; the base handler turns it
into the documented ``{"success": false, "message": ...}`` answer. The
messages are part of the API contract: clients compare them as strings.

A refusal may carry a ``reason`` (``not admin``, ``not course instructor``,
...): the documented message stays the same, and only in debug mode ("more
helpful error messages", as 0.6.0 did) does the answer add it in
parentheses, ``Permission denied (not admin)``. The reason is data, not a
rewritten string, so production answers cannot change by accident.
"""

from __future__ import annotations


class ApiError(Exception):
    """A refusal with an HTTP status and a documented message."""

    def __init__(self, status: int, message: str, *, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason

    def message_for(self, debug: bool) -> str:
        """The answer's message: with the reason in debug mode only."""
        if debug and self.reason:
            return f'{self.message} ({self.reason})'
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
