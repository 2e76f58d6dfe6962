"""What a course, assignment or user name may be, decided in one place.

Names reach the database from URL paths (percent-decoded by Tornado) and
from JSON fields (where ``\\u0000`` and lone surrogates such as ``\\ud800``
are valid escapes). Two rules, applied by :mod:`ngshare.operations.lookup`
and by the operations that create things:

* **A name the database cannot store can never exist.** PostgreSQL's
  ``text`` refuses NUL (``text fields cannot contain NUL``), and a lone
  surrogate cannot be encoded as UTF-8 by either database driver. Such a
  name is looked up as absent *before* any query, so both databases answer
  the same documented 404 (or 403, in the documented order of the checks),
  never a 500.
* **A new name has no control character.** A course, assignment or user
  created by a request must be non-empty, storable, and free of C0 control
  characters and DEL: they end up as folder names in every nbgrader
  exchange, in log lines and in terminals, where a newline or an escape
  sequence does harm. Names that already exist (ngshare 0.6.0 accepted
  anything) stay usable: only the creation of a *new* one is refused, with
  400 ``Illegal name``.

The same test of storability applies to every other client string that is
stored (roster fields, file paths: see :mod:`ngshare.filetree`).
"""

from __future__ import annotations

import re

from .errors import bad_request

ILLEGAL_NAME = 'Illegal name'

# NUL, or a surrogate code point (only a lone one survives json.loads, and
# none survives Tornado's strict UTF-8 decoding of URLs and forms).
_UNSTORABLE = re.compile(r'[\x00\ud800-\udfff]')
# What a new name must not contain: the above, every C0 control, DEL.
_NOT_IN_NEW_NAMES = re.compile(r'[\x00-\x1f\x7f\ud800-\udfff]')


def is_storable(text: object) -> bool:
    """Whether ``text`` is a str both databases can store as it is."""
    return isinstance(text, str) and not _UNSTORABLE.search(text)


def can_exist(name: object) -> bool:
    """Whether a row may carry this name; False means "not found" at once."""
    return bool(name) and is_storable(name)


def is_legal_new_name(name: object) -> bool:
    """Whether a request may create a course, assignment or user so named."""
    return isinstance(name, str) and bool(name) and not _NOT_IN_NEW_NAMES.search(name)


def require_new_name(name: object) -> None:
    """400 ``Illegal name`` unless :func:`is_legal_new_name`."""
    if not is_legal_new_name(name):
        raise bad_request(ILLEGAL_NAME)
