"""What every handler does the same way.

A request is: receive the body within the size limit, authenticate, read
the documented arguments, run one operation in the worker pool, answer.
Every answer, including 404, 405, 413 and unexpected failures, is the
documented JSON envelope; a stack trace never reaches a client unless the
server runs in debug mode.

Bodies are streamed in (``stream_request_body``) so that an upload over the
limit is answered with a JSON 413 instead of Tornado's bare 400, and is
drained without being held in memory. Because the ``user`` field of the
stand-alone mode may be in the body, authentication happens once the body
is complete, just before the handler method runs.

Large uploads and downloads are handled with few copies of their content
(see ``docs/performance.md``): a large form body is parsed in the worker
pool from the buffer it was received into (:mod:`.forms`) and its large
values are decoded to ``str`` once, there; a tree answer is written out in
pieces of :data:`DOWNLOAD_CHUNK` bytes of each file.
"""

from __future__ import annotations

import binascii
import functools
import json
import logging
import traceback
from functools import partial
from http import HTTPStatus

from tornado.httputil import parse_body_arguments
from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler, stream_request_body

from ..auth import LOGIN_REQUIRED
from ..errors import ApiError
from ..logsafe import redact
from ..operations.runner import run_operation
from ..permissions import Actor
from ..runtime import Runtime
from .forms import MAX_FIELDS, parse_form

log = logging.getLogger('ngshare.handlers')

_HTTP_METHODS = ('GET', 'HEAD', 'POST', 'DELETE', 'PATCH', 'PUT', 'OPTIONS')
# An oversized body is read and thrown away, so that the client receives the
# 413 answer; beyond this many times the limit the connection is just closed.
DRAIN_FACTOR = 16
REQUEST_TOO_LARGE = 'Request too large'
# A urlencoded body larger than this is parsed in the worker pool (see
# parse_form); its values larger than LARGE_VALUE are decoded from UTF-8 to
# the str that get_argument answers right away, so that the bytes are not
# kept beside it.
LARGE_BODY = 256 * 1024
LARGE_VALUE = 64 * 1024
# Files are read, base64-encoded and written out in pieces of this many
# bytes: a multiple of 3, so that the pieces' base64 texts concatenate.
DOWNLOAD_CHUNK = 3 * 256 * 1024


def read_chunk_encoded(stream) -> bytes:
    """The next piece of an open blob, base64-encoded (empty at the end)."""
    return binascii.b2a_base64(stream.read(DOWNLOAD_CHUNK), newline=False)


def _decoded_value(value: bytes | bytearray) -> bytes | str:
    """A large form value as the str get_argument would make of it.

    Invalid UTF-8 stays bytes, so that get_argument answers its usual 400.
    """
    if len(value) > LARGE_VALUE:
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError:
            pass
    return bytes(value)


def _after_body(method):
    """Run ``method`` only once the body is complete and the caller known."""

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        await self.receive_request()
        if self._finished:
            return
        result = method(self, *args, **kwargs)
        if result is not None:
            await result

    return wrapper


@stream_request_body
class BaseHandler(RequestHandler):
    """JSON envelope, bounded bodies, authentication and the worker pool."""

    # Whether an anonymous request is refused before the method runs.
    login_required = True
    # Whether the caller is looked up at all (not for probes and icons).
    identifies_caller = True
    actor: Actor | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for method in _HTTP_METHODS:
            function = cls.__dict__.get(method.lower())
            if function is not None:
                setattr(cls, method.lower(), _after_body(function))
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

    # Receiving the request

    def prepare(self):
        self._body = bytearray()
        limit = self.config.max_body_size
        self._too_large = int(self.request.headers.get('Content-Length') or 0) > limit
        self.request.connection.set_max_body_size(limit * DRAIN_FACTOR)

    def data_received(self, chunk: bytes) -> None:
        if self._too_large:
            return
        if len(self._body) + len(chunk) > self.config.max_body_size:
            self._too_large = True
            self._body = bytearray()
            return
        self._body += chunk

    async def receive_request(self) -> None:
        """Parse the form body, then identify the caller (or refuse)."""
        if self._too_large:
            raise ApiError(413, REQUEST_TOO_LARGE)
        if self._body:
            request = self.request
            fields = None
            if self._is_large_form():
                fields = await IOLoop.current().run_in_executor(
                    self.runtime.pool, self._parse_large_form
                )
            if fields is None:
                parse_body_arguments(
                    request.headers.get('Content-Type', ''),
                    bytes(self._body),
                    request.body_arguments,
                    request.files,
                    request.headers,
                )
            else:
                for name, value in fields:
                    request.body_arguments.setdefault(name, []).append(value)
                del fields
            self._body = bytearray()
            for name, values in request.body_arguments.items():
                request.arguments.setdefault(name, []).extend(values)
        if not self.identifies_caller:
            return
        self.actor = await self.runtime.authenticator.identify(self)
        if self.actor is None and self.login_required:
            self.refuse_anonymous()

    def _is_large_form(self) -> bool:
        headers = self.request.headers
        return (
            len(self._body) > LARGE_BODY
            and headers.get('Content-Type', '').startswith(
                'application/x-www-form-urlencoded'
            )
            and 'Content-Encoding' not in headers
        )

    def _take_body(self) -> bytearray:
        body, self._body = self._body, bytearray()
        return body

    def _parse_large_form(self) -> list[tuple[str, bytes | str]] | None:
        """In a worker thread: the body's fields, with few copies of it.

        None (the body untouched) when Tornado's parser should decide, for
        a body of more fields than it accepts.
        """
        if self._body.count(b'&') + 1 > MAX_FIELDS:
            return None
        # The buffer is handed to parse_form without keeping a reference
        # here, so that it can be freed while its largest value is decoded.
        fields = parse_form(self._take_body())
        for index in range(len(fields)):
            name, value = fields[index]
            fields[index] = (name, b'')
            fields[index] = (name, _decoded_value(value))
            del value
        return fields

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

    async def answer_tree(self, operation, *args) -> None:
        """Run ``operation`` and write its ``files`` out piece by piece.

        Each blob is read and base64-encoded in the worker pool, in pieces
        of DOWNLOAD_CHUNK bytes, each written and flushed (sent to the
        client) before the next is read, so the answer never holds more
        than a piece of one file, whatever the size of the files. Blobs are
        checked to exist first, so a missing one is a clean 500 rather than
        a truncated answer.
        """
        fields = await self.run(operation, *args)
        files = fields.pop('files')
        store = self.runtime.store
        pool = self.runtime.pool
        loop = IOLoop.current()
        list_only = self.list_only()
        if not list_only:
            missing = await loop.run_in_executor(
                pool,
                lambda: [f.key for f in files if not store.path_for(f.key).is_file()],
            )
            if missing:
                raise RuntimeError(f'blobs missing from storage: {missing}')
        head = json.dumps({'success': True, **fields})
        self.write(head[:-1] + ', "files": [')
        for index, ref in enumerate(files):
            entry = json.dumps({'path': ref.path, 'checksum': ref.checksum})
            if list_only:
                self.write((', ' if index else '') + entry)
                continue
            # The same text as json.dumps of the entry with its content.
            self.write((', ' if index else '') + entry[:-1] + ', "content": "')
            stream = await loop.run_in_executor(
                pool, open, store.path_for(ref.key), 'rb'
            )
            try:
                while True:
                    piece = await loop.run_in_executor(pool, read_chunk_encoded, stream)
                    if not piece:
                        break
                    self.write(piece)
                    del piece
                    await self.flush()
            finally:
                stream.close()
            self.write('"}')
        self.finish(']}')

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

    identifies_caller = False
    SUPPORTED_METHODS = _HTTP_METHODS

    def prepare(self):
        raise ApiError(404, 'Not Found')
