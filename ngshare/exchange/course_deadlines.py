"""The deadline subcommands of ``ngshare-course-management`` (instructors).

``set_due_date``, ``clear_due_date``, ``set_late_policy``, ``set_extension``,
``remove_extension`` and ``show_deadline`` change or show an assignment's
deadline on ngshare without releasing it again. A DATE is ISO 8601; without
an offset it is the local time of the machine running the command (its
``TZ``), converted to UTC before it is sent, and every instant printed is
shown in UTC and in that local time. ``set_due_date`` and ``clear_due_date``
also change the due date of the assignment in the local nbgrader gradebook
when it has the assignment (unless ``--no-gb``), so that ``nbgrader
autograde`` and ngshare agree.
"""

from __future__ import annotations

from .cli_output import Failed, complain, say
from .client import NgshareClient
from .deadlines import DateError, from_wire, local_text, parse_user_date, to_wire
from .gradebook import gradebook_set_duedate

__all__ = ['add_deadline_parsers']


def _instant(text: str | None) -> str:
    """``2026-12-01T17:00:00+00:00 (2026-12-01 18:00:00 CET)``."""
    instant = from_wire(text)
    if instant is None:
        return 'none'
    return f'{to_wire(instant)} ({local_text(instant)})'


def _date(text: str) -> str:
    try:
        return to_wire(parse_user_date(text))
    except DateError as exc:
        raise Failed(str(exc)) from None


def _gradebook(args, due) -> int:
    if args.no_gb:
        return 0
    failure = gradebook_set_duedate(args.course_id, args.assignment_id, due)
    if failure:
        complain(failure)
        return 1
    return 0


def set_due_date(client: NgshareClient, args) -> int:
    due = _date(args.date)
    body = client.post('deadline', args.course_id, args.assignment_id, due=due)
    say(
        f'Successfully set the due date of {args.assignment_id} in'
        f' {args.course_id} to {_instant(body.get("due"))}'
    )
    return _gradebook(args, from_wire(body.get('due')))


def clear_due_date(client: NgshareClient, args) -> int:
    client.post('deadline', args.course_id, args.assignment_id, due='')
    say(
        f'Successfully cleared the due date of {args.assignment_id} in {args.course_id}'
    )
    return _gradebook(args, None)


def set_late_policy(client: NgshareClient, args) -> int:
    fields = {'late_policy': args.policy}
    if args.grace is not None:
        fields['grace_seconds'] = str(args.grace)
    body = client.post('deadline', args.course_id, args.assignment_id, **fields)
    grace = body.get('grace_seconds', args.grace or 0)
    say(
        f'Successfully set the late policy of {args.assignment_id} in'
        f' {args.course_id} to {body.get("late_policy", args.policy)}'
        f' (grace {grace} seconds)'
    )
    return 0


def set_extension(client: NgshareClient, args) -> int:
    due = _date(args.date)
    body = client.post(
        'extension', args.course_id, args.assignment_id, args.student_id, due=due
    )
    say(
        f'Successfully gave {args.student_id} an extension of'
        f' {args.assignment_id} in {args.course_id} until'
        f' {_instant(body.get("due"))}'
    )
    return 0


def remove_extension(client: NgshareClient, args) -> int:
    client.delete('extension', args.course_id, args.assignment_id, args.student_id)
    say(
        f'Successfully removed the extension of {args.student_id} of'
        f' {args.assignment_id} in {args.course_id}'
    )
    return 0


def show_deadline(client: NgshareClient, args) -> int:
    body = client.get('deadline', args.course_id, args.assignment_id)
    say(f'{args.course_id} {args.assignment_id}')
    say(f'  due: {_instant(body.get("due"))}')
    say(
        f'  late policy: {body.get("late_policy")}, grace'
        f' {body.get("grace_seconds")} seconds'
    )
    say(f'  submissions close: {_instant(body.get("cutoff"))}')
    for extension in body.get('extensions') or []:
        say(
            f'  extension: {extension.get("student_id")} until'
            f' {_instant(extension.get("due"))}'
        )
    return 0


def _grace(text: str) -> int:
    import argparse

    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f'not a whole number of seconds: {text!r}')
    return int(text)


def add_deadline_parsers(sub) -> None:
    """The six subcommands, on ``build_parser``'s subparsers."""
    date_help = (
        'ISO 8601, e.g. 2026-12-01T17:00 (local time of this machine)'
        ' or 2026-12-01T17:00:00+01:00'
    )

    def course_and_assignment(p):
        p.add_argument('course_id', metavar='COURSE_ID', help='ID of the course')
        p.add_argument(
            'assignment_id', metavar='ASSIGNMENT_ID', help='Released assignment'
        )

    def no_gb(p):
        p.add_argument(
            '--no-gb',
            action='store_true',
            help='Leave the due date in the local nbgrader gradebook alone',
        )

    p = sub.add_parser('set_due_date', help='Set the due date of an assignment')
    course_and_assignment(p)
    p.add_argument('date', metavar='DATE', help=date_help)
    no_gb(p)
    p.set_defaults(func=set_due_date)

    p = sub.add_parser('clear_due_date', help='Remove the due date of an assignment')
    course_and_assignment(p)
    no_gb(p)
    p.set_defaults(func=clear_due_date)

    p = sub.add_parser(
        'set_late_policy',
        help='Accept late submissions (marked late) or refuse them after the cut-off',
    )
    course_and_assignment(p)
    p.add_argument('policy', choices=('accept', 'refuse'), help='The late policy')
    p.add_argument(
        '--grace',
        metavar='SECONDS',
        type=_grace,
        default=None,
        help='With refuse: submissions close this long after the due date'
        ' (default: unchanged)',
    )
    p.set_defaults(func=set_late_policy)

    p = sub.add_parser(
        'set_extension', help='Give one student a later due date (or change it)'
    )
    course_and_assignment(p)
    p.add_argument('student_id', metavar='STUDENT_ID', help='JupyterHub user')
    p.add_argument('date', metavar='DATE', help=date_help)
    p.set_defaults(func=set_extension)

    p = sub.add_parser('remove_extension', help="Remove one student's extension")
    course_and_assignment(p)
    p.add_argument('student_id', metavar='STUDENT_ID', help='JupyterHub user')
    p.set_defaults(func=remove_extension)

    p = sub.add_parser(
        'show_deadline',
        help='Show the due date, late policy and extensions of an assignment',
    )
    course_and_assignment(p)
    p.set_defaults(func=show_deadline)
