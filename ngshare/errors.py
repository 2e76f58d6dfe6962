"""The one way a request fails on purpose.

Handlers and operations raise :class:`ApiError`; the base handler turns it
into the documented ``{"success": false, "message": ...}`` answer. The
messages are part of the API contract: clients compare them as strings.
"""

from __future__ import annotations


class ApiError(Exception):
    """A refusal with an HTTP status and a documented message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


PERMISSION_DENIED = 'Permission denied'


def permission_denied() -> ApiError:
    return ApiError(403, PERMISSION_DENIED)
