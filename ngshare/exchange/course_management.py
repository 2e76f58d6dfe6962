"""``ngshare-course-management``: courses, instructors, students and
deadlines on ngshare.

The subcommands and flags of ``ngshare_exchange``'s command of the same name
(see ``ngshare-course-management -h``). Students are also added to (or
removed from) the local nbgrader gradebook of the course directory this runs
in, unless ``--no-gb``.

It finds ngshare as nbgrader does: the URL given to ``configureExchange`` in
``nbgrader_config.py`` (``--url`` overrides it), or in Zero to JupyterHub
``http://proxy-public/services/ngshare``. It authenticates with
``$JUPYTERHUB_API_TOKEN``.

The deadline subcommands (``set_due_date`` ... ``show_deadline``) are in
``course_deadlines.py``, ``history`` in ``course_history.py``.

Exit status: 0 when everything asked was done, 1 when something failed (one
line on standard error per failure, with the server's message), 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence

from .cli_output import PROG, Failed, complain, say, warn
from .client import NgshareClient, NgshareError, resolve_url
from .course_deadlines import add_deadline_parsers
from .course_history import add_history_parser
from .gradebook import (
    gradebook_add,
    gradebook_check,
    gradebook_remove,
    load_nbgrader_config,
)

__all__ = ['PROG', 'Failed', 'main']

CSV_COLUMNS = ('student_id', 'first_name', 'last_name', 'email')


def warn_upper_case(names: Sequence[str]) -> None:
    upper = [name for name in names if name != name.lower()]
    if upper:
        warn(
            'JupyterHub normally makes user names lower-case; if these users'
            ' cannot reach the course, add their lower-case names instead: '
            + ', '.join(upper)
        )


# --------------------------------------------------------------------------
# configuration: where ngshare is


def configured_url(config) -> str | None:
    """The ngshare URL that ``nbgrader_config.py`` sets, if any."""
    from .exchange import Exchange

    url = Exchange(config=config)
    if url.ngshare_url or url._ngshare_url:
        return url.ngshare_url or url._ngshare_url
    # ngshare_exchange's configureExchange keeps the URL on its class.
    factory = config.get('ExchangeFactory', {})
    klass = factory.get('exchange') if hasattr(factory, 'get') else None
    if isinstance(klass, type) and not issubclass(klass, Exchange):
        try:
            value = klass(config=config).ngshare_url
        except Exception:  # noqa: BLE001 (its own error: no URL there)
            return None
        return value if isinstance(value, str) and value else None
    return None


def make_client(args) -> NgshareClient:
    url = args.url
    if not url:
        try:
            url = configured_url(load_nbgrader_config())
        except Exception as exc:  # noqa: BLE001 (a broken nbgrader_config.py)
            raise Failed(f'cannot read nbgrader_config.py: {exc}') from None
    try:
        return NgshareClient(resolve_url(url))
    except NgshareError as exc:
        raise Failed(f'{exc} (or pass --url)') from None


# --------------------------------------------------------------------------
# subcommands


def create_course(client: NgshareClient, args) -> int:
    warn_upper_case(args.instructors)
    client.post('course', args.course_id, instructors=json.dumps(args.instructors))
    say(f'Successfully created {args.course_id}')
    return 0


def _current_fields(client: NgshareClient, kind: str, course_id: str, name: str):
    """The stored first name, last name and email ('' when unknown)."""
    try:
        body = client.get(kind, course_id, name)
    except NgshareError as exc:
        if exc.message in ('Instructor not found', 'Student not found'):
            return ('', '', '')
        raise
    return tuple(body.get(k) or '' for k in ('first_name', 'last_name', 'email'))


def _fields(client, kind, args, name) -> dict:
    given = (args.first_name, args.last_name, args.email)
    if None in given:
        current = _current_fields(client, kind, args.course_id, name)
        given = tuple(c if g is None else g for g, c in zip(given, current))
    return dict(zip(('first_name', 'last_name', 'email'), given))


def add_instructor(client: NgshareClient, args) -> int:
    warn_upper_case([args.instructor_id])
    fields = _fields(client, 'instructor', args, args.instructor_id)
    client.post('instructor', args.course_id, args.instructor_id, **fields)
    say(f'Successfully added {args.instructor_id} as an instructor to {args.course_id}')
    return 0


def remove_instructor(client: NgshareClient, args) -> int:
    client.delete('instructor', args.course_id, args.instructor_id)
    say(f'Successfully deleted instructor {args.instructor_id} from {args.course_id}')
    return 0


def add_student(client: NgshareClient, args) -> int:
    warn_upper_case([args.student_id])
    fields = _fields(client, 'student', args, args.student_id)
    client.post('student', args.course_id, args.student_id, **fields)
    say(f'Successfully added/updated {args.student_id} on {args.course_id}')
    if args.no_gb:
        return 0
    failures = gradebook_add(args.course_id, [{'username': args.student_id, **fields}])
    for failure in failures:
        complain(failure)
    return 1 if failures else 0


def read_students_csv(path: str) -> list[dict]:
    """Rows of ``student_id,first_name,last_name,email``; all or nothing."""
    try:
        with open(path, newline='', encoding='utf-8-sig') as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise Failed(f'cannot read {path}: {exc.strerror}') from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise Failed(f'{path} is not a CSV text file: {exc}') from None
    if not rows:
        raise Failed(f'{path} is empty')
    header = [cell.strip() for cell in rows[0]]
    missing = [col for col in CSV_COLUMNS if col not in header]
    if missing:
        raise Failed(
            f'{path}: the first line must be {",".join(CSV_COLUMNS)}'
            f' (missing {", ".join(missing)})'
        )
    index = {col: header.index(col) for col in CSV_COLUMNS}
    students, problems, seen = [], [], set()
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) < len(header):
            problems.append(f'line {line}: {len(row)} fields, expected {len(header)}')
            continue
        student = {
            'username': row[index['student_id']].strip(),
            'first_name': row[index['first_name']].strip(),
            'last_name': row[index['last_name']].strip(),
            'email': row[index['email']].strip(),
        }
        if not student['username']:
            problems.append(f'line {line}: empty student_id')
        elif student['username'] in seen:
            problems.append(f'line {line}: {student["username"]} appears twice')
        else:
            seen.add(student['username'])
            students.append(student)
    if problems:
        raise Failed(f'{path}: nobody was added: ' + '; '.join(problems))
    if not students:
        raise Failed(f'{path} lists no students')
    return students


def add_students(client: NgshareClient, args) -> int:
    students = read_students_csv(args.csv_file)
    warn_upper_case([s['username'] for s in students])
    body = client.post('students', args.course_id, students=json.dumps(students))
    by_name = {s['username']: s for s in students}
    added, status = [], 0
    for entry in body.get('status', []):
        name = entry.get('username')
        if entry.get('success'):
            say(f'{name} was successfully added to {args.course_id}')
            if name in by_name:
                added.append(by_name[name])
        else:
            complain(
                f'There was an error adding {name} to {args.course_id}:'
                f' {entry.get("message")}'
            )
            status = 1
    if not args.no_gb and added:
        failures = gradebook_add(args.course_id, added)
        for failure in failures:
            complain(failure)
        if failures:
            status = 1
    return status


def remove_students(client: NgshareClient, args) -> int:
    """Remove each student from ngshare and the gradebook, or from neither."""
    status = 0
    for student_id in args.students:
        if not args.no_gb:
            problem = gradebook_check(args.course_id, student_id, args.force)
            if problem:
                complain(problem)
                status = 1
                continue
        try:
            client.delete('student', args.course_id, student_id)
        except NgshareError as exc:
            complain(f'cannot remove {student_id} from {args.course_id}: {exc}')
            status = 1
            if exc.status is None:
                break
            continue
        say(f'Successfully deleted {student_id} from {args.course_id}')
        if not args.no_gb:
            failure = gradebook_remove(args.course_id, student_id)
            if failure:
                complain(failure)
                status = 1
    return status


# --------------------------------------------------------------------------
# command line


def _names(parser, names_help):
    parser.add_argument('-f', '--first_name', default=None, help=names_help[0])
    parser.add_argument('-l', '--last_name', default=None, help=names_help[1])
    parser.add_argument('-e', '--email', default=None, help=names_help[2])


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            'Manage courses, instructors and students on ngshare'
            f' (ngshare {__version__}).'
        ),
    )
    parser.add_argument(
        '--url',
        help='ngshare URL (default: the one in nbgrader_config.py)',
    )
    parser.add_argument('--version', action='version', version=f'ngshare {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')

    p = sub.add_parser('create_course', help='Create a course (admins)')
    p.add_argument('course_id', metavar='COURSE_ID', help='ID of the course')
    p.add_argument(
        'instructors',
        metavar='INSTRUCTOR',
        nargs='*',
        help='Instructors of the new course',
    )
    p.set_defaults(func=create_course)

    p = sub.add_parser(
        'add_instructor', help='Add or update an instructor of a course (admins)'
    )
    p.add_argument('course_id', metavar='COURSE_ID', help='ID of the course')
    p.add_argument('instructor_id', metavar='INSTRUCTOR_ID', help='JupyterHub user')
    _names(
        p,
        (
            'First name (default: unchanged, or empty)',
            'Last name (default: unchanged, or empty)',
            'Email (default: unchanged, or empty)',
        ),
    )
    p.set_defaults(func=add_instructor)

    p = sub.add_parser(
        'remove_instructor', help='Remove an instructor from a course (admins)'
    )
    p.add_argument('course_id', metavar='COURSE_ID', help='ID of the course')
    p.add_argument('instructor_id', metavar='INSTRUCTOR_ID', help='JupyterHub user')
    p.set_defaults(func=remove_instructor)

    p = sub.add_parser('add_student', help='Add or update one student of a course')
    p.add_argument('course_id', metavar='COURSE_ID', help='ID of the course')
    p.add_argument('student_id', metavar='STUDENT_ID', help='JupyterHub user')
    _names(
        p,
        (
            'First name (default: unchanged, or empty)',
            'Last name (default: unchanged, or empty)',
            'Email (default: unchanged, or empty)',
        ),
    )
    p.add_argument(
        '--no-gb',
        action='store_true',
        help='Do not add the student to the local nbgrader gradebook',
    )
    p.set_defaults(func=add_student)

    p = sub.add_parser(
        'add_students', help='Add or update the students listed in a CSV file'
    )
    p.add_argument('course_id', metavar='COURSE_ID', help='ID of the course')
    p.add_argument(
        'csv_file',
        metavar='CSV_FILE',
        help='CSV file whose first line is student_id,first_name,last_name,email',
    )
    p.add_argument(
        '--no-gb',
        action='store_true',
        help='Do not add the students to the local nbgrader gradebook',
    )
    p.set_defaults(func=add_students)

    p = sub.add_parser('remove_students', help='Remove students from a course')
    p.add_argument('course_id', metavar='COURSE_ID', help='ID of the course')
    p.add_argument('students', metavar='STUDENT', nargs='+', help='JupyterHub users')
    p.add_argument(
        '--no-gb',
        action='store_true',
        help='Do not remove the students from the local nbgrader gradebook',
    )
    p.add_argument(
        '--force',
        action='store_true',
        help='Also remove students who have grades from the local gradebook',
    )
    p.set_defaults(func=remove_students)
    add_deadline_parsers(sub)
    add_history_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, 'func', None):
        parser.print_help()
        return 2
    try:
        client = make_client(args)
        try:
            return args.func(client, args)
        finally:
            client.close()
    except Failed as exc:
        complain(str(exc))
    except NgshareError as exc:
        course = getattr(args, 'course_id', None)
        complain(
            f'{args.command.replace("_", " ")}'
            + (f' ({course})' if course else '')
            + f' failed: {exc}'
        )
    except KeyboardInterrupt:
        complain('interrupted')
        return 130
    return 1


if __name__ == '__main__':
    sys.exit(main())
