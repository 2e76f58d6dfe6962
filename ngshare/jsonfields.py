"""Decoding the JSON a client sends in a form field (``files``, ``students``,
``instructors``), so that no such text can make a request fail with 500.

``json.loads`` raises ``ValueError`` for text that is not JSON, but
``RecursionError`` for arrays or objects nested deeper than the
interpreter's recursion limit (``[[[[...]]]]`` 100,000 levels deep is a
200 kB body). Both mean the same to the client: the field is not the
documented JSON, answered with the field's documented 400.
"""

from __future__ import annotations

import json

from .errors import bad_request


def parse_field(text: str, message: str) -> object:
    """The decoded JSON of a form field, or 400 ``message``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise bad_request(message) from None
