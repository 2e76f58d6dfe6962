"""The HTTP side of the exchange: one small client for ngshare's REST API.

Shared by the nbgrader exchange classes and ``ngshare-course-management``.
Every request carries ``Authorization: token $JUPYTERHUB_API_TOKEN``; writes
(POST, DELETE) also carry the ``user`` form field, which a stand-alone
ngshare uses to name the caller (under JupyterHub ngshare ignores it).

Failures become one :class:`NgshareError` whose message says what went wrong
in words a student can act on: the server's own ``message`` for refusals,
the address for an unreachable server, the status and the start of the body
for a reply that is not ngshare's JSON. Network errors are retried once.

Uploads of a directory tree (:meth:`NgshareClient.upload`) use the raw-parts
encoding when the server's latest answer offered it
(``Ngshare-Upload-Formats: multipart``), else the documented ``files``
field, so that the plugin keeps working with ngshare 0.6.0 and behind a
proxy that drops the header.
"""

from __future__ import annotations

import getpass
import http.client
import os
import socket
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import requests
import urllib3

from .uploads import MULTIPART, UploadFile, files_field, multipart_parts

# urllib3 >= 2 tells a host name that cannot be resolved apart.
_NameResolutionError = getattr(
    urllib3.exceptions, 'NameResolutionError', socket.gaierror
)

__all__ = [
    'KUBERNETES_URL',
    'UPLOAD_FORMATS_HEADER',
    'NgshareClient',
    'NgshareError',
    'current_user',
    'resolve_url',
]

#: Where the ngshare service is in Zero to JupyterHub (the proxy's in-cluster
#: DNS name), used when no URL is configured and we run in a pod.
KUBERNETES_URL = 'http://proxy-public/services/ngshare'

#: The answer header naming the upload formats a server takes beyond the
#: documented one (a comma-separated list).
UPLOAD_FORMATS_HEADER = 'Ngshare-Upload-Formats'

#: Hints appended to some server messages.
HINTS = {
    'Request too large': (
        'the upload is larger than the ngshare server accepts'
        ' (its --max-body-size / --max-file-size); make the files smaller'
    ),
    'Login required': (
        'no JupyterHub API token was sent: run this inside your JupyterHub'
        ' server, or set JUPYTERHUB_API_TOKEN'
    ),
    'Invalid token': 'JupyterHub does not accept the token in JUPYTERHUB_API_TOKEN',
}


class NgshareError(Exception):
    """A request to ngshare failed; ``str(error)`` is the whole story.

    ``message`` is the server's ``message`` (None when the server did not
    answer with ngshare's JSON), ``status`` the HTTP status (None when there
    was no answer at all).
    """

    def __init__(
        self, text: str, *, message: str | None = None, status: int | None = None
    ):
        super().__init__(text)
        self.message = message
        self.status = status


def in_kubernetes() -> bool:
    """True inside a Kubernetes pod (Zero to JupyterHub)."""
    return bool(
        os.environ.get('KUBERNETES_SERVICE_HOST')
        or os.environ.get('PROXY_PUBLIC_SERVICE_HOST')
    )


def resolve_url(configured: str | None) -> str:
    """The ngshare URL to use: the configured one, else Z2JH's, else an error."""
    if configured:
        return configured.rstrip('/')
    if in_kubernetes():
        return KUBERNETES_URL
    raise NgshareError(
        'the ngshare URL is not configured: call'
        " configureExchange(c, 'http://HOST:PORT/services/ngshare') in"
        ' nbgrader_config.py (only Zero to JupyterHub finds it by itself)'
    )


def current_user() -> str:
    """The user name sent as ``user``: $JUPYTERHUB_USER, $USER, the login."""
    for name in ('JUPYTERHUB_USER', 'USER'):
        if os.environ.get(name):
            return os.environ[name]
    return getpass.getuser()


def quote_path(segments: Iterable[str]) -> str:
    return '/'.join(urllib.parse.quote(str(s), safe='') for s in segments)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it, as requests and urllib3 chain them.

    requests wraps urllib3's error as its first argument; urllib3's
    ``MaxRetryError`` keeps the last failure in ``reason``, its
    ``ProtocolError`` the lost connection's error as second argument; both
    also chain with ``raise ... from``.
    """
    found: list[BaseException] = []
    pending: list[object] = [exc]
    while pending and len(found) < 16:
        error = pending.pop(0)
        if not isinstance(error, BaseException) or error in found:
            continue
        found.append(error)
        pending += [error.__cause__, error.__context__, getattr(error, 'reason', None)]
        pending += list(error.args)
    return found


def _any(exc: BaseException, *types: type) -> BaseException | None:
    return next((e for e in _causes(exc) if isinstance(e, types)), None)


def _is_connect_error(exc: requests.RequestException) -> bool:
    """The request never reached the server (safe to send again)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    # urllib3's NameResolutionError is a NewConnectionError.
    return (
        _any(exc, urllib3.exceptions.NewConnectionError, ConnectionRefusedError)
        is not None
    )


def _reason(exc: requests.RequestException) -> str:
    """A short reason for a network error (no urllib3 object dumps)."""
    if isinstance(exc, requests.Timeout):
        return 'no answer in time'
    if _any(exc, ConnectionRefusedError):
        return 'connection refused'
    unresolved = _any(exc, socket.gaierror)
    if unresolved is not None and unresolved.errno == socket.EAI_NONAME:
        return 'name or service not known'
    if _any(exc, TimeoutError, socket.timeout):
        return 'timed out'
    if unresolved is not None or _any(exc, _NameResolutionError):
        return 'host name not found'
    if _any(exc, http.client.RemoteDisconnected, urllib3.exceptions.ProtocolError):
        # ProtocolError('Connection aborted.', ...): lost before the answer.
        return 'the connection was closed before an answer'
    return str(exc)[:200]


class NgshareClient:
    """Requests to one ngshare server on behalf of the current user.

    ``url`` is the service URL without the trailing slash, e.g.
    ``http://127.0.0.1:10101/services/ngshare`` (endpoints are
    ``url + '/courses'`` and so on). ``token`` defaults to
    ``$JUPYTERHUB_API_TOKEN``, ``user`` to :func:`current_user`.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        user: str | None = None,
        timeout: float = 120.0,
        retries: int = 1,
        retry_delay: float = 1.0,
        log=None,
    ):
        self.url = url.rstrip('/')
        self.token = (
            token if token is not None else os.environ.get('JUPYTERHUB_API_TOKEN', '')
        )
        self.user = user if user is not None else current_user()
        self.timeout = timeout
        self.retries = max(0, retries)
        self.retry_delay = retry_delay
        self.log = log
        self.session = requests.Session()
        #: The upload formats the latest answer offered (its
        #: Ngshare-Upload-Formats header); empty before any answer, and
        #: after an answer without the header.
        self.upload_formats: frozenset[str] = frozenset()

    def close(self) -> None:
        self.session.close()

    # -- the one request method ------------------------------------------

    def request(
        self,
        method: str,
        segments: Iterable[str],
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        parts: Sequence[tuple[str, tuple]] | None = None,
    ) -> dict:
        """Send one request; return ngshare's JSON on success, else raise.

        ``segments`` are raw path segments (each percent-encoded here).
        ``parts`` (``requests``' ``files=``) makes the body
        ``multipart/form-data``, ``data`` its fields without a filename.
        """
        method = method.upper()
        url = f'{self.url}/{quote_path(segments)}'
        headers = {'Accept': 'application/json'}
        if self.token:
            headers['Authorization'] = f'token {self.token}'
        body = dict(data or {})
        if method not in ('GET', 'HEAD'):
            body.setdefault('user', self.user)
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=body or None,
                    files=parts or None,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
                break
            except requests.RequestException as exc:
                safe = method == 'GET' or _is_connect_error(exc)
                if safe and attempt < self.retries:
                    attempt += 1
                    if self.log is not None:
                        self.log.warning(
                            'ngshare at %s: %s; trying again', self.url, _reason(exc)
                        )
                    time.sleep(self.retry_delay)
                    continue
                if safe:
                    raise NgshareError(
                        f'cannot reach ngshare at {self.url} ({_reason(exc)})'
                    ) from None
                raise NgshareError(
                    f'ngshare at {self.url} did not answer {method} {url}'
                    f' ({_reason(exc)}); the change may or may not have been'
                    ' made, check before trying again'
                ) from None
        self.upload_formats = _upload_formats(response)
        return self._answer(method, url, response)

    def upload(
        self,
        method: str,
        segments: Iterable[str],
        files: Sequence[UploadFile],
        **fields: str,
    ) -> dict:
        """Send a directory tree with the form ``fields``, as :meth:`request`.

        Raw parts (``multipart/form-data``: the ``fields``, a ``manifest``,
        one ``file`` part of raw bytes per file) when the latest answer of
        the server offered ``multipart``; otherwise, also when nothing has
        been answered yet, the documented urlencoded ``files`` field, the
        same bytes as before the extension. Callers ask the server something
        first where they can (a command's GET), so that the choice is made
        on what this server said.
        """
        if MULTIPART in self.upload_formats:
            if self.log is not None:
                self.log.debug('Uploading %d files as raw parts', len(files))
            return self.request(
                method, segments, data=fields, parts=multipart_parts(files)
            )
        return self.request(
            method, segments, data={**fields, 'files': files_field(files)}
        )

    def _answer(self, method: str, url: str, response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or 'success' not in body:
            kind = response.headers.get('Content-Type', 'no content type')
            start = ' '.join(response.text.split())[:200]
            raise NgshareError(
                f'{url} is not an ngshare API: it answered {method} with HTTP'
                f' {response.status_code} ({kind}) and not ngshare JSON'
                + (f': {start!r}' if start else ''),
                status=response.status_code,
            )
        if body.get('success') is True and response.status_code == 200:
            return body
        message = str(body.get('message') or f'HTTP {response.status_code}')
        hint = HINTS.get(message)
        raise NgshareError(
            message + (f' ({hint})' if hint else ''),
            message=message,
            status=response.status_code,
        )

    def get(self, *segments: str, **params: Any) -> dict:
        return self.request('GET', segments, params=params or None)

    def post(self, *segments: str, **data: Any) -> dict:
        return self.request('POST', segments, data=data)

    def delete(self, *segments: str, **data: Any) -> dict:
        return self.request('DELETE', segments, data=data)


def _upload_formats(response: requests.Response) -> frozenset[str]:
    """The formats an answer's Ngshare-Upload-Formats header names."""
    value = response.headers.get(UPLOAD_FORMATS_HEADER, '')
    return frozenset(name.strip().lower() for name in value.split(',') if name.strip())
