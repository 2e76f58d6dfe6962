"""The ``history`` subcommand of ``ngshare-course-management``.

``history COURSE`` answers "I submitted, why is it not collected?" from the
terminal: it reads ngshare's history of the course (``GET /history``, every
page, following its ``next`` cursor) and prints it oldest first, as an
aligned table (times in the local time of this machine, as the deadline
subcommands print due dates) or, with ``--csv``, as CSV with the API's own
fields, for a spreadsheet. Instructors see the whole course, a student
their own entries; the filters are the API's, applied by the server.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

from .cli_output import Failed
from .client import NgshareClient
from .deadlines import DateError, from_wire, local_text, parse_user_date, to_wire

__all__ = ['ACTIONS', 'CSV_FIELDS', 'add_history_parser', 'read_history']

#: The actions ngshare records (docs/api.md, "History"), for the help text;
#: the server checks ``--action`` itself (400 Unknown action).
ACTIONS = (
    'create_course',
    'delete_course',
    'add_instructor',
    'remove_instructor',
    'add_student',
    'remove_student',
    'release',
    'unrelease',
    'fetch',
    'submit',
    'collect',
    'release_feedback',
    'fetch_feedback',
    'restore',
    'purge',
)

#: The fields of an entry, as the API answers them: the CSV's columns.
CSV_FIELDS = (
    'id',
    'action',
    'user',
    'assignment_id',
    'student_id',
    'timestamp',
    'time',
    'files',
    'bytes',
)

#: The table's columns: (heading, field); numbers are right-aligned.
TABLE_COLUMNS = (
    ('TIME', 'time'),
    ('ACTION', 'action'),
    ('USER', 'user'),
    ('ASSIGNMENT', 'assignment_id'),
    ('STUDENT', 'student_id'),
    ('TIMESTAMP', 'timestamp'),
    ('FILES', 'files'),
    ('BYTES', 'bytes'),
)
NUMBERS = frozenset({'files', 'bytes'})

#: Entries per request: the API's largest page, the fewest round trips.
PAGE = 1000
#: At most this many pages (a hundred million entries at the largest page):
#: a server that never answers ``next: null`` cannot keep the command busy.
MAX_PAGES = 100_000


def read_history(
    client: NgshareClient,
    course_id: str,
    filters: dict,
    *,
    last: int | None = None,
    page: int = PAGE,
) -> list[dict]:
    """Every entry of the course that the filters keep, oldest first (with
    ``last``, only the ``last`` newest ones, still oldest first).

    Follows ``next`` until it is null; a cursor answered twice would repeat
    the same pages forever, so it stops the command instead.
    """
    params = {key: value for key, value in filters.items() if value is not None}
    params['order'] = 'oldest' if last is None else 'newest'
    entries: list[dict] = []
    seen: set[str] = set()
    cursor = None
    for _ in range(MAX_PAGES):
        wanted = page if last is None else min(page, last - len(entries))
        if wanted <= 0:
            break
        body = client.get(
            'history',
            course_id,
            **params,
            limit=str(wanted),
            **({} if cursor is None else {'cursor': cursor}),
        )
        history = body.get('history')
        if not isinstance(history, list) or not all(
            isinstance(entry, dict) for entry in history
        ):
            raise Failed(f'ngshare answered no history list for {course_id}')
        entries += history
        cursor = body.get('next')
        if cursor is None:
            break
        cursor = str(cursor)
        if cursor in seen:
            raise Failed(
                f'ngshare answered the same page of the history of {course_id}'
                f' twice (cursor {cursor}); stopped after {len(entries)} entries'
            )
        seen.add(cursor)
    else:
        raise Failed(f'the history of {course_id} has more than {MAX_PAGES} pages')
    return entries if last is None else entries[:last][::-1]


def _text(value) -> str:
    return '' if value is None else str(value)


def write_csv(entries: list[dict]) -> None:
    """A header row and one row per entry, the API's fields ('' for null)."""
    writer = csv.writer(sys.stdout, lineterminator='\n')
    writer.writerow(CSV_FIELDS)
    for entry in entries:
        writer.writerow([_text(entry.get(field)) for field in CSV_FIELDS])


def _cell(entry: dict, field: str) -> str:
    value = entry.get(field)
    if field == 'time':
        instant = from_wire(value)
        return _text(value) if instant is None else local_text(instant)
    return '-' if value is None or value == '' else str(value)


def write_table(entries: list[dict]) -> None:
    """Aligned columns under a heading row, times in local time."""
    rows = [[heading for heading, _ in TABLE_COLUMNS]]
    rows += [[_cell(entry, field) for _, field in TABLE_COLUMNS] for entry in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    for row in rows:
        cells = [
            cell.rjust(width) if field in NUMBERS else cell.ljust(width)
            for cell, width, (_, field) in zip(row, widths, TABLE_COLUMNS)
        ]
        print('  '.join(cells).rstrip())


def _instant(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return to_wire(parse_user_date(text))
    except DateError as exc:
        raise Failed(str(exc)) from None


def history(client: NgshareClient, args) -> int:
    filters = {
        'assignment_id': args.assignment,
        'student_id': args.student,
        'action': args.action,
        'since': _instant(args.since),
        'until': _instant(args.until),
    }
    entries = read_history(client, args.course_id, filters, last=args.last)
    try:
        if args.csv:
            write_csv(entries)
        elif entries:
            write_table(entries)
        else:
            print(f'No entries in the history of {args.course_id}')
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (``| head``): not an error of ours. Point
        # stdout at nothing so that the interpreter's last flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f'not a positive whole number: {text!r}')
    return int(text)


def add_history_parser(sub) -> None:
    """The ``history`` subcommand, on ``build_parser``'s subparsers."""
    date_help = (
        'ISO 8601, e.g. 2026-12-01T17:00 (local time of this machine)'
        ' or 2026-12-01T17:00:00+01:00'
    )
    p = sub.add_parser(
        'history',
        help='Show who did what, when, in a course (a student: their own entries)',
    )
    p.add_argument('course_id', metavar='COURSE_ID', help='ID of the course')
    p.add_argument('--assignment', metavar='ASSIGNMENT_ID', help='Only this assignment')
    p.add_argument(
        '--student', metavar='STUDENT_ID', help='Only entries concerning this student'
    )
    p.add_argument(
        '--action',
        metavar='ACTION',
        help='Only this action: ' + ', '.join(ACTIONS),
    )
    p.add_argument('--since', metavar='DATE', help=f'Only from DATE on ({date_help})')
    p.add_argument('--until', metavar='DATE', help='Only before DATE')
    p.add_argument(
        '--last', metavar='N', type=_count, help='Only the N most recent entries'
    )
    p.add_argument(
        '--csv',
        action='store_true',
        help='Print CSV with the API fields (a header row, one row per entry)',
    )
    p.set_defaults(func=history)
