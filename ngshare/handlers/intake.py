"""Bookkeeping of request bodies: how many bytes are held, how long one takes.

A request body is held in memory until it is parsed, and the parsed form
lives until the answer is sent. Two things bound what a client (signed in
or not: the stand-alone mode may read its caller from the body) can make
the server hold this way:

* :class:`BodyBudget`, one per process (``Application`` setting
  ``body_budget``): the bytes of all bodies held at once may not exceed
  ``--max-buffered-size``. A request reserves what it will hold before it
  holds it (its ``Content-Length`` up front, or each piece of a chunked
  body as it arrives); a request that does not fit is answered 503
  ``Server busy, try again later`` and holds nothing. Reservations are given
  back when the request finishes or its connection closes, so the budget
  never leaks.
* :class:`BodyWatchdog`, one per request with a body: the body must arrive
  by ``start + body_timeout + received / min_body_rate`` (the model of
  Apache's ``mod_reqtimeout body=20,MinRate=500``). It is one IOLoop timer,
  moved on only when it fires (the per-chunk cost is an integer addition),
  so thousands of trickling clients cost a timer each, not a check per
  byte.

Everything here runs on the event loop (one thread), so there are no locks.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tornado.http1connection import is_transfer_encoding_chunked
from tornado.httputil import HTTPHeaders, HTTPInputError
from tornado.ioloop import IOLoop

from ..errors import INVALID_BODY, ApiError

__all__ = [
    'BODY_TIMEOUT',
    'INVALID_BODY',
    'RETRY_AFTER_SECONDS',
    'SERVER_BUSY',
    'TOO_MANY_FIELDS',
    'BodyBudget',
    'BodyWatchdog',
    'BusyError',
    'Reservation',
    'announced_length',
]

SERVER_BUSY = 'Server busy, try again later'
BODY_TIMEOUT = 'Request timeout'
# A urlencoded body of more fields than Tornado parses (INVALID_BODY, for a
# body that cannot be read as a form, is in ngshare.errors).
TOO_MANY_FIELDS = 'Too many form fields'
# What a 503 for a full budget suggests to the client (Retry-After).
RETRY_AFTER_SECONDS = 5


class BusyError(ApiError):
    """503: the bodies held at once would exceed the budget."""

    def __init__(self):
        super().__init__(
            503, SERVER_BUSY, headers={'Retry-After': str(RETRY_AFTER_SECONDS)}
        )


class BodyBudget:
    """Bytes of request bodies held at once, all requests together."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.held = 0

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes of the budget; False (nothing taken) if full."""
        if self.held + size > self.capacity:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        self.held -= size


class Reservation:
    """What one request holds of a :class:`BodyBudget`; released once."""

    def __init__(self, budget: BodyBudget):
        self.budget = budget
        self.size = 0

    def take(self, size: int) -> bool:
        if not self.budget.reserve(size):
            return False
        self.size += size
        return True

    def release(self) -> None:
        size, self.size = self.size, 0
        if size:
            self.budget.release(size)


class BodyWatchdog:
    """Calls ``on_expiry`` once when a body falls behind its deadline.

    The deadline is ``start + timeout + received / min_rate``; the caller
    adds to :attr:`received` as pieces arrive. Stop it when the body is
    complete or the connection closes.
    """

    def __init__(self, timeout: float, min_rate: int, on_expiry: Callable[[], None]):
        self._loop = IOLoop.current()
        self._timeout = timeout
        self._min_rate = min_rate
        self._on_expiry = on_expiry
        self._start = self._loop.time()
        self.received = 0
        self._handle = self._loop.call_at(self._start + timeout, self._check)

    def deadline(self) -> float:
        return self._start + self._timeout + self.received / self._min_rate

    def _check(self) -> None:
        deadline = self.deadline()
        if self._loop.time() < deadline:
            self._handle = self._loop.call_at(deadline, self._check)
            return
        self._handle = None
        self._on_expiry()

    def stop(self) -> None:
        if self._handle is not None:
            self._loop.remove_timeout(self._handle)
            self._handle = None


def announced_length(headers: HTTPHeaders) -> int | None:
    """The length of the body the headers announce; None when chunked.

    0 for a request without a body. The framing is checked as Tornado will
    check it once the body is read (repeated identical ``Content-Length``
    values, as some proxies send, count once), so that a bad one is
    answered 400 ``Invalid request body`` as JSON before anything is read.
    """
    try:
        if is_transfer_encoding_chunked(headers):
            return None
    except HTTPInputError:
        raise ApiError(400, INVALID_BODY) from None
    value = headers.get('Content-Length')
    if value is None:
        return 0
    pieces = re.split(r',[ \t]*', value.strip())
    if any(piece != pieces[0] for piece in pieces) or not (
        pieces[0].isascii() and pieces[0].isdigit()
    ):
        raise ApiError(400, INVALID_BODY)
    return int(pieces[0])
