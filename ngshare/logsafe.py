"""Keeping secrets out of logs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

_SECRET_PARAMETERS = {'token', '_xsrf', 'code', 'state'}


def redact(uri: str) -> str:
    """The request URI with the values of secret parameters hidden."""
    path, _, query = uri.partition('?')
    if not query:
        return path
    pairs = [
        (key, '[secret]' if key.lower() in _SECRET_PARAMETERS else value)
        for key, value in parse_qsl(query, keep_blank_values=True)
    ]
    return path + '?' + urlencode(pairs)
