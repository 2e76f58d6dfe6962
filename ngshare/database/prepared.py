"""Statements built once per process, for the lookups every request runs.

Each request runs the same few statements with other values (bound
parameters). Built anew each time, SQLAlchemy constructs the statement and
computes its cache key before it even looks up the compiled form: on SQLite
that costs more than running the statement. Built once and kept here, a
statement's cache key is computed once too (SQLAlchemy memoizes it on the
statement object).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from sqlalchemy.sql import Executable

_STATEMENTS: dict[Hashable, Executable] = {}


def prepared(key: Hashable, build: Callable[[], Executable]) -> Executable:
    """The statement ``build()`` makes, built on first use of ``key``.

    Two threads may build one at the same moment; either result is the
    same statement, and the dictionary keeps one of them.
    """
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = build()
    return statement


__all__ = ['prepared']
