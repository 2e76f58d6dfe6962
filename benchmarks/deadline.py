#!/usr/bin/env python3
"""A course at its deadline, against live ngshare servers: how fast, any loss?

Runs the life of one assignment of a whole course (``bench_scenario.py``) against
a stand-alone server (``--vngshare``: the caller is named by the ``user``
parameter), as many students at once as ``--concurrency`` allows:

1. ``course``: the admin creates a course with one instructor;
2. ``roster``: the instructor adds every student in one ``POST students``;
3. ``release``: the instructor releases an assignment (by default a
   200 KB notebook, 4 data files of 200 KB and one of 5 MB);
4. ``fetch storm``: every student fetches it at once (contents checked);
5. ``deadline rush``: every student submits at once, some of them twice;
   then the **count check**: the server lists exactly the submissions made;
6. ``listings``: every student lists the course's assignments and their
   own submissions;
7. ``collect``: the instructor downloads every student's latest submission;
8. ``feedback release`` and ``feedback fetch``: one feedback per student;
9. ``big release``, ``big upload``, ``big download``: with
   ``--big-file-mb``, one student submits a file of that size, the
   instructor collects it (neither side holds it whole).

Two modes:

* ``--url URL [--pid PID] [--encoding form|multipart]``: one run against a
  running server, one line per step;
* ``--compare``: A = ngshare 0.6.0, B = this ngshare with the form
  encoding, B' = a fresh instance of this ngshare with the multipart
  encoding, started here (or given with ``--url-a`` ...), ``--rounds``
  rounds interleaved, then the side-by-side tables (``bench_compare.py``,
  ``bench_report.py``).

Exit status 0 when every request of every run succeeded and every count
check passed, 1 otherwise. See ``benchmarks/README.md``. Example::

    python3 benchmarks/deadline.py --compare --rounds 3 --students 300 \\
        --concurrency 20 --notebook-kb 300 --big-file-mb 50
"""

from __future__ import annotations

import argparse
import os
import sys

from bench_client import health_url
from bench_scenario import Deadline
from bench_servers import REPO_ROOT
from bench_wire import ENCODINGS, FORM


def add_scenario_options(parser: argparse.ArgumentParser) -> None:
    """The scenario's options, shared by both modes and storage_kinds.py."""
    group = parser.add_argument_group('the scenario')
    add = group.add_argument
    add('--students', type=int, default=300, help='students in the course (300)')
    add('--concurrency', type=int, default=20, help='requests in flight (20)')
    add('--admin', default='root', help="a name in the server's --admins (root)")
    add('--instructor', default='instructor')
    add(
        '--notebook-kb',
        type=int,
        default=300,
        help='size of each submitted notebook in kB (300)',
    )
    add('--release-kb', type=int, default=200, help='released notebook, kB (200)')
    add('--data-files', type=int, default=4, help='data files released (4)')
    add('--data-kb', type=int, default=200, help='size of each, kB (200)')
    add(
        '--release-mb',
        type=float,
        default=5,
        help='one more released file of this many MB (10^6 bytes; 5; 0: none)',
    )
    add(
        '--resubmit-fraction',
        type=float,
        default=0.1,
        help='share of students who submit twice (0.1)',
    )
    add(
        '--big-file-mb',
        type=float,
        default=50,
        help='size of the big file round trip in MB (10^6 bytes; 50; 0: none)',
    )
    add('--cleanup', action='store_true', help='delete the course at the end')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Load ngshare servers like a course at its deadline.',
        allow_abbrev=False,
    )
    add_scenario_options(parser)
    one = parser.add_argument_group('one run (--url)')
    one.add_argument('--url', help='the API, e.g. http://127.0.0.1:12121/api')
    one.add_argument('--pid', type=int, help="the server's pid: CPU and memory")
    one.add_argument('--course', help='course to create (default: deadline-<time>)')
    one.add_argument(
        '--encoding', choices=ENCODINGS, default=FORM, help='upload encoding (form)'
    )
    one.add_argument(
        '--no-probe', action='store_true', help='no /healthz probe during the run'
    )
    both = parser.add_argument_group('side by side (--compare)')
    both.add_argument('--compare', action='store_true', help="A, B and B' side by side")
    both.add_argument('--rounds', type=int, default=3, help='runs per column (3)')
    both.add_argument(
        '--ngshare-060',
        default=os.environ.get('NGSHARE_060_VENV')
        or str(REPO_ROOT / '.venv-ngshare-0.6.0'),
        help='venv holding ngshare==0.6.0 (default: $NGSHARE_060_VENV or'
        ' <repo>/.venv-ngshare-0.6.0)',
    )
    for column, what in (('a', '0.6.0 (A)'), ('b', 'B'), ('b2', "B'")):
        both.add_argument(f'--url-{column}', help=f'API of a running {what} server')
        both.add_argument(f'--pid-{column}', type=int, help=f'its pid ({what})')
    both.add_argument(
        '--database-url',
        help="a PostgreSQL URL whose role may CREATE DATABASE: B and B' get a"
        ' fresh database each beside it (default: SQLite files; A always SQLite)',
    )
    both.add_argument(
        '--no-multipart', action='store_true', help="leave out the B' column"
    )
    both.add_argument('--keep', action='store_true', help='keep the temporary folder')
    return parser


def check(parser: argparse.ArgumentParser, args) -> None:
    if args.students < 1 or args.concurrency < 1:
        parser.error('--students and --concurrency must be at least 1')
    if args.compare == bool(args.url):
        parser.error('give either --url (one run) or --compare')
    if args.compare and args.rounds < 1:
        parser.error('--rounds must be at least 1')
    for column in ('a', 'b', 'b2'):
        if getattr(args, f'pid_{column}') and not getattr(args, f'url_{column}'):
            parser.error(f'--pid-{column} needs --url-{column}')


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check(parser, args)
    if args.compare:
        from bench_compare import compare

        return compare(args)
    print(
        f'# {args.url}: {args.students} students, concurrency {args.concurrency},'
        f' {args.encoding} encoding, big file {args.big_file_mb} MB'
        + (f', server pid {args.pid}' if args.pid else ''),
        flush=True,
    )
    scenario = Deadline(
        args,
        url=args.url,
        pid=args.pid,
        course=args.course,
        encoding=args.encoding,
        health=None if args.no_probe else health_url(args.url),
    )
    return scenario.run()


if __name__ == '__main__':
    sys.exit(main())
