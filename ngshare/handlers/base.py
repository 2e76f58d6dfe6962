"""What every handler does the same way.

A request is: identify the caller from its headers, receive the body within
the limits, read the documented arguments, run one operation in the worker
pool, answer. Every answer, including 404, 405, 413 and unexpected failures,
is the documented JSON envelope; a stack trace never reaches a client unless
the server runs in debug mode.

A request that announces a body is identified in ``prepare``, before any of
the body is read, so that an anonymous client (or a refused token) is
answered at once and the connection closed without the body ever being held
(``--max-body-size`` allows half a gigabyte). Only the stand-alone mode,
whose ``user`` may be a form field, reads the body of a caller its headers
do not name, and identifies the caller again once it is complete. A request
without a body is identified just before the handler method runs, so that
its refusal keeps the connection alive.

Bodies are streamed in (``stream_request_body``) so that an upload over the
limit is answered with a JSON 413 instead of Tornado's bare 400, and is
drained without being held in memory. While a body arrives, :mod:`.intake`
bounds the bytes held by all requests together (503 when full) and the time
the body may take (408); an aborted upload's buffer is dropped, and its
share of the budget given back, as soon as its connection closes.

Large uploads and downloads are handled with few copies of their content
(see ``docs/performance.md``): a large form body is parsed in the worker
pool from the buffer it was received into (:mod:`.forms`) and its large
values are decoded to ``str`` once, there; a tree answer is written out
piece by piece (:mod:`.downloads`).

An upload's tree is decoded, hashed and written to the blob store in the
worker pool before its operation's transaction begins (:meth:`upload`,
:mod:`ngshare.operations.uploads`), and write transactions run where
``Runtime.writes`` says (on SQLite one thread, so writers queue in order).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from functools import partial

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler, stream_request_body

from ..actor import Actor
from ..auth import LOGIN_REQUIRED
from ..errors import ApiError
from ..large_tree import BodySlice
from ..operations.runner import quick_reads, run_operation, run_quick
from ..operations.uploads import PreparedUpload
from ..runtime import Runtime
from .downloads import write_tree
from .envelope import JsonErrors
from .forms import read_form_body
from .intake import (
    BODY_TIMEOUT,
    BodyWatchdog,
    BusyError,
    Reservation,
    announced_length,
)
from .uploading import prepare_upload

log = logging.getLogger('ngshare.handlers')

_HTTP_METHODS = ('GET', 'HEAD', 'POST', 'DELETE', 'PATCH', 'PUT', 'OPTIONS')
# An oversized body is read and thrown away, so that the client receives the
# 413 answer; beyond this many times the limit the connection is just closed.
DRAIN_FACTOR = 16
REQUEST_TOO_LARGE = 'Request too large'
# The upload formats this server takes beyond the documented ``files`` field
# (docs/api.md), announced on every answer for clients that can use them.
UPLOAD_FORMATS_HEADER = 'Ngshare-Upload-Formats'
UPLOAD_FORMATS = 'multipart'


def after_body(method):
    """On every verb of a BaseHandler (like ``@web.authenticated``).

    The method runs once the body is parsed and the caller identified or
    refused (:meth:`BaseHandler.receive_request`), never for a request
    already answered (413, 408, 503). A verb without it would run for an
    unknown caller: its class is refused when defined.
    """

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        if self._finished:
            return
        await self.receive_request()
        if self._finished:
            return
        result = method(self, *args, **kwargs)
        if result is not None:
            await result

    wrapper.after_body = True
    return wrapper


@stream_request_body
class BaseHandler(JsonErrors, RequestHandler):
    """JSON envelope, bounded bodies, authentication and the worker pool."""

    # Whether an anonymous request is refused before the method runs.
    login_required = True
    # Whether the caller is looked up at all (not for probes and icons);
    # handlers that do not are never given a body either.
    identifies_caller = True
    actor: Actor | None = None
    # The state of the body, also for handlers whose prepare did not run
    # (NotFoundHandler) and requests refused before their body.
    _body: bytearray | None = None
    _too_large = False
    _discard = False
    _chunked = False
    _identified = False
    _watchdog: BodyWatchdog | None = None
    _reservation: Reservation | None = None
    _finish_future = None
    # The file parts of a raw-parts upload, until upload() takes them.
    _raw_parts: list[bytes] | None = None
    # The tree of an upload once prepared (the metrics count it).
    prepared: PreparedUpload | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A check, not a wrapping: each verb says @after_body itself.
        for method in _HTTP_METHODS:
            function = cls.__dict__.get(method.lower())
            if function is not None and not getattr(function, 'after_body', False):
                raise TypeError(
                    f'{cls.__qualname__}.{method.lower()} needs @after_body'
                )
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
        self._quick_reads = quick_reads(runtime)

    @property
    def config(self):
        return self.runtime.config

    def set_default_headers(self):
        self.set_header('Content-Type', 'application/json; charset=UTF-8')
        self.set_header('Cache-Control', 'no-store')
        # No content sniffing, no framing by other sites (clickjacking).
        self.set_header('X-Content-Type-Options', 'nosniff')
        self.set_header('X-Frame-Options', 'DENY')
        self.set_header('Content-Security-Policy', "frame-ancestors 'none'")
        self.set_header(UPLOAD_FORMATS_HEADER, UPLOAD_FORMATS)

    def compute_etag(self):
        # Every answer is Cache-Control: no-store, so an ETag would never be
        # sent back: not worth hashing each answer for it.
        return None

    def finish(self, chunk=None):
        # Kept, so that an answer given before the body can be awaited (see
        # _until_answered).
        self._finish_future = super().finish(chunk)
        return self._finish_future

    # Receiving the request

    @property
    def _identifies_from_body(self) -> bool:
        return getattr(self.runtime.authenticator, 'identifies_from_body', False)

    async def prepare(self):
        """Before the body: who is calling, and room for what they send."""
        self._body = bytearray()
        try:
            length = announced_length(self.request.headers)
            if length == 0:
                # No body: identified just before the method (receive_request).
                return
            if self.identifies_caller:
                self.actor = await self.runtime.authenticator.identify(self)
                self._identified = True
                if (
                    self.actor is None
                    and self.login_required
                    and not self._identifies_from_body
                ):
                    self.refuse_anonymous()
                    return
            self._start_body(length)
        except ApiError as error:
            # Answered here, not raised to Tornado: the answer must be sent
            # (and awaited, below) before Tornado goes on to read the body.
            if not self._finished:
                self.send_api_error(error)
        finally:
            if self._finished:
                await self._until_answered()

    def _start_body(self, length: int | None) -> None:
        """Reserve the body's bytes (all of them, unless chunked); time it."""
        limit = self.config.max_body_size
        self.request.connection.set_max_body_size(limit * DRAIN_FACTOR)
        self._discard = not self.identifies_caller
        self._chunked = length is None
        self._reservation = Reservation(self.application.settings['body_budget'])
        if length is not None and length > limit:
            self._too_large = True
        elif (
            length is not None
            and not self._discard
            and not self._reservation.take(length)
        ):
            raise BusyError()
        self._watchdog = BodyWatchdog(
            self.config.body_timeout, self.config.min_body_rate, self._body_too_slow
        )

    async def _until_answered(self) -> None:
        """Wait until an answer given before the body is sent.

        Tornado then closes the connection (the body was not read), before
        it goes on to read the body: so nothing of it is held, and a framing
        error it would find there adds no bare 400 after the answer.
        """
        if self._finish_future is not None:
            with contextlib.suppress(StreamClosedError):
                await self._finish_future

    def data_received(self, chunk: bytes) -> None:
        if self._watchdog is not None:
            self._watchdog.received += len(chunk)
        if self._too_large or self._discard or self._body is None:
            return
        if len(self._body) + len(chunk) > self.config.max_body_size:
            # Drained from here on (still timed by the watchdog), not held.
            self._too_large = True
            self._drop_body()
            return
        if self._chunked and not self._reservation.take(len(chunk)):
            self._refuse_during_body(BusyError())
            return
        self._body += chunk

    def _body_too_slow(self) -> None:
        """The watchdog's verdict: 408, and the connection is closed."""
        self._watchdog = None
        if not self._finished:
            self._refuse_during_body(ApiError(408, BODY_TIMEOUT))

    def _refuse_during_body(self, error: ApiError) -> None:
        """Answer while the body is still arriving; drop what was held.

        Tornado closes the connection once the answer is sent, since the
        body was not read to its end.
        """
        self._release_body()
        self._body = None
        self.send_api_error(error)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None

    def _drop_body(self) -> None:
        """Drop the buffer and give its share of the budget back."""
        if self._body is not None:
            self._body = bytearray()
        if self._reservation is not None:
            self._reservation.release()

    def _release_body(self) -> None:
        """The request is over (or its body is): nothing held, nothing timed."""
        self._stop_watchdog()
        self._drop_body()

    def on_connection_close(self) -> None:
        # An aborted upload: free its memory now, not when the handler is
        # collected.
        self._release_body()
        self._body = None
        super().on_connection_close()

    def on_finish(self) -> None:
        self._release_body()

    async def receive_request(self) -> None:
        """Parse the form body, then identify the caller (or refuse)."""
        self._stop_watchdog()
        if self._too_large:
            raise ApiError(413, REQUEST_TOO_LARGE)
        had_body = bool(self._body)
        if had_body:
            await self._parse_body()
        if not self.identifies_caller:
            return
        if not self._identified or (had_body and self._identifies_from_body):
            # Stand-alone, ``user`` may have been in the body.
            self.actor = await self.runtime.authenticator.identify(self)
        if self.actor is None and self.login_required:
            self.refuse_anonymous()

    async def _parse_body(self) -> None:
        """The body's form fields into ``request.arguments``, or a 400."""
        # Handed over: only the list refers to the buffer, so that it can be
        # freed while the form is decoded (forms.read_form_body).
        owned = [self._body]
        self._body = bytearray()
        self._raw_parts = await read_form_body(self.request, owned, self.runtime.pool)

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

    def decode_argument(self, value, name=None):
        # The ``files`` of a large body stays in the body's buffer
        # (forms.BodySlice) for upload(); read as bytes anywhere else.
        if isinstance(value, BodySlice):
            value = bytes(value)
        return super().decode_argument(value, name=name)

    def list_only(self) -> bool:
        return self.get_argument('list_only', 'false') == 'true'

    async def upload(self) -> PreparedUpload:
        """The request's tree, decoded, hashed and written to the store in
        the worker pool (:func:`.uploading.prepare_upload`)."""
        self.prepared = await prepare_upload(self)
        return self.prepared

    # Running operations

    async def run(
        self, operation, *args, write: bool = False, recording=False, quick=None
    ) -> dict:
        """``operation``'s answer, run in the worker pool (writes, and the
        downloads ``recording`` their history entry, where
        ``Runtime.writes`` says); ``quick``, its one-statement first step,
        is tried on the event loop first where that is cheaper (SQLite:
        :func:`~ngshare.operations.runner.run_quick`)."""
        if quick is not None and self._quick_reads:
            fields = run_quick(self.runtime, self.actor, quick, args)
            if fields is not None:
                return fields
        executor = self.runtime.writes if write or recording else self.runtime.pool
        return await IOLoop.current().run_in_executor(
            executor,
            partial(
                run_operation,
                self.runtime,
                self.actor,
                operation,
                args,
                write=write,
                recording=recording,
            ),
        )

    async def answer(self, operation, *args, write: bool = False, quick=None) -> None:
        """Run ``operation`` and reply with its fields on success."""
        fields = await self.run(operation, *args, write=write, quick=quick)
        self.finish(json.dumps({'success': True, **fields}))

    async def answer_tree(self, listing, download, *args, quick=None) -> None:
        """Write a tree's ``files`` out piece by piece: with ``list_only``
        the ``listing`` operation's (a read, ``quick`` first), else the
        ``download``'s, which records the action in the history in the
        same transaction (:mod:`ngshare.operations.history`)."""
        if self.list_only():
            fields = await self.run(listing, *args, quick=quick)
        else:
            fields = await self.run(download, *args, recording=True)
        await write_tree(self, fields, list_only=self.list_only())


class NotFoundHandler(BaseHandler):
    """Every path that no route matches: JSON 404, whatever the method."""

    identifies_caller = False
    SUPPORTED_METHODS = _HTTP_METHODS

    async def prepare(self):
        self.send_api_error(ApiError(404, 'Not Found'))
        await self._until_answered()
