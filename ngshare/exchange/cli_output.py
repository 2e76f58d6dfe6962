"""What ``ngshare-course-management`` prints, and its worded failure.

A module of its own so that the subcommands in other modules
(``course_deadlines.py``) raise the very :class:`Failed` that ``main``
catches, also when the command runs as ``python -m
ngshare.exchange.course_management`` (then that module is ``__main__``,
and importing it again would make a second class).
"""

from __future__ import annotations

import sys

__all__ = ['PROG', 'Failed', 'complain', 'say', 'warn']

PROG = 'ngshare-course-management'


class Failed(Exception):
    """A failure already worded for the user."""


def say(text: str) -> None:
    print(text, flush=True)


def complain(text: str) -> None:
    print(f'{PROG}: error: {text}', file=sys.stderr, flush=True)


def warn(text: str) -> None:
    print(f'{PROG}: warning: {text}', file=sys.stderr, flush=True)
