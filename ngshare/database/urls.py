"""The ``--database`` URL, checked before anything is created or opened.

The service and ``ngshare-admin`` both call :func:`check_database_url`
first, so that a typo gets the same one-line answer from both, saying how
to fix it, before a folder, a SQLite file or a connection exists:

* a bare path (``/srv/x.db``) is not a URL: the answer gives the SQLite
  URL of that file (``sqlite:////srv/x.db``, four slashes before an
  absolute path);
* ``postgresql://`` means psycopg 3, the driver ``ngshare[postgres]``
  installs (SQLAlchemy 2.0 would pick psycopg2 for it, 2.1 picks psycopg);
* a driver that cannot be imported is named with the package to install,
  rather than Python's bare ``No module named 'psycopg'``.

:func:`sqlite_file` is the one answer to "is this a SQLite file, and
where": the service creates its folder and puts the cookie secret beside
it, ``ngshare-admin`` refuses a missing one (connecting would create it),
and the garbage collector never counts it as a blob.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

__all__ = ['POSTGRES_HINT', 'DatabaseURLError', 'check_database_url', 'sqlite_file']

POSTGRES_HINT = 'install ngshare[postgres] (psycopg 3) to use PostgreSQL'


class DatabaseURLError(ValueError):
    """The URL cannot work; the message is the line to show, with the fix."""


def check_database_url(text: str) -> str:
    """The URL to connect with, after checking that it can be used.

    Only parses it and imports its driver: nothing is created or connected.
    Raises :class:`DatabaseURLError`.
    """
    try:
        url = make_url(text)
    except ArgumentError:
        hint = ''
        if '://' not in text:
            hint = f' (for a SQLite file use sqlite:///{os.path.abspath(text)})'
        raise DatabaseURLError(f'invalid database URL {text!r}{hint}') from None
    if url.drivername == 'postgresql':
        url = url.set(drivername='postgresql+psycopg')
        text = url.render_as_string(hide_password=False)
    shown = url.render_as_string(hide_password=True)
    try:
        url.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise DatabaseURLError(
            f'invalid database URL {shown!r}: SQLAlchemy knows no database '
            f'{url.drivername!r} (use sqlite:///PATH or '
            'postgresql://USER:PASSWORD@HOST/NAME)'
        ) from None
    except ImportError as error:
        if url.get_driver_name() == 'psycopg':
            hint = POSTGRES_HINT
        elif url.get_backend_name() == 'postgresql':
            hint = f'install that driver, or {POSTGRES_HINT} with postgresql://'
        else:
            hint = 'install the driver of this database'
        raise DatabaseURLError(
            f'cannot use database {shown}: {error}: {hint}'
        ) from None
    return text


def sqlite_file(database_url: str | URL) -> str | None:
    """The file of a SQLite database URL, as the URL gives it (relative
    paths stay relative); None for other databases and in-memory SQLite.

    Raises SQLAlchemy's ``ArgumentError`` for text that is no URL.
    """
    url = make_url(database_url)
    if url.get_backend_name() != 'sqlite' or url.database in (None, '', ':memory:'):
        return None
    return url.database
