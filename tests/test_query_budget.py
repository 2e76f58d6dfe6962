"""Listing and reading endpoints cost a constant number of SQL statements.

The in-process server of :mod:`_counting_server` counts every statement its
engine sends. Each endpoint is asked about a small course (3 students, short
trees) and then a large one (60 students, more instructors, assignments,
submissions and files): the counts must be equal, and within an explicit
budget, so that a regression to one query per row (an N+1) fails here. On
SQLite the ``BEGIN`` that opens each transaction is sent as a statement too:
it counts for the comparison, not for the budget.

The statements the lists send are also checked against the query planner:
none of them may scan a whole table (SQLite ``EXPLAIN QUERY PLAN``), or, on
PostgreSQL, need a sequential scan when the planner is told to avoid them
(the admin's list of every course excepted). What a submit costs is in
``test_submit_budget.py``.

The history (issue 17): a page of ``GET /history`` costs the same few
statements for the small course as for the large one, for every caller,
filter and cursor, and each action writes its entries with one INSERT,
whatever the number of people it concerns (a bulk add of students).
"""

from __future__ import annotations

import json
import re

from _counting_server import (
    ADMIN,
    SMALL,
    assignments_of,
    describe,
    encoded_tree,
    populate,
    queries,
    students_of,
)
from sqlalchemy import func, select, text

from ngshare.database.models import HistoryEntry
from ngshare.deadlines import parse_instant

# The most queries any listing or reading endpoint may send (not counting
# the BEGIN that SQLite sends as a statement). A full download (fetch,
# collect, feedback) now writes its history entry too: one INSERT more,
# still within it.
BUDGET = 6
# A history page: the course, the caller's role, one index range of history
# (an admin: whether the course has history, then the range).
HISTORY_BUDGET = 3

LARGE = {
    'course': 'Large 101',
    'instructors': ['teach-l', 'ta-1', 'ta-2', 'ta-3'],
    'students': 60,
    'assignments': 4,
    'submissions': 3,
    'files': 6,
}
OTHER_COURSES = 8  # created with the large course: the admin sees them all


def endpoints(shape, stamps) -> dict[str, tuple[tuple, str, dict]]:
    """Name -> (path segments, caller, query) of every endpoint measured."""
    course = shape['course']
    teacher = shape['instructors'][0]
    assignment = assignments_of(shape)[0]
    student = students_of(shape)[1]
    stamp = stamps[student][0]
    return {
        'courses (admin)': (('courses',), ADMIN, {}),
        'courses (instructor)': (('courses',), teacher, {}),
        'courses (student)': (('courses',), student, {}),
        'instructors': (('instructors', course), student, {}),
        'students': (('students', course), teacher, {}),
        'assignments': (('assignments', course), student, {}),
        'submissions': (('submissions', course, assignment), teacher, {}),
        'student submissions (instructor)': (
            ('submissions', course, assignment, student),
            teacher,
            {},
        ),
        'student submissions (student)': (
            ('submissions', course, assignment, student),
            student,
            {},
        ),
        'assignment list_only': (
            ('assignment', course, assignment),
            student,
            {'list_only': 'true'},
        ),
        'assignment': (('assignment', course, assignment), student, {}),
        'submission latest': (
            ('submission', course, assignment, student),
            teacher,
            {},
        ),
        'submission at timestamp': (
            ('submission', course, assignment, student),
            teacher,
            {'timestamp': stamp},
        ),
        'submission list_only': (
            ('submission', course, assignment, student),
            teacher,
            {'list_only': 'true'},
        ),
        'feedback (student)': (
            ('feedback', course, assignment, student),
            student,
            {'timestamp': stamp},
        ),
        'feedback (instructor)': (
            ('feedback', course, assignment, student),
            teacher,
            {'timestamp': stamp, 'list_only': 'true'},
        ),
    }


def expected_sizes(shape, name: str, answer: dict, courses: int) -> None:
    """The answer really is about the course of ``shape`` (so that equal
    counts compare a small list with a large one)."""
    sizes = {
        'courses (admin)': ('courses', courses),
        'courses (instructor)': ('courses', 1),
        'courses (student)': ('courses', 1),
        'instructors': ('instructors', len(shape['instructors'])),
        'students': ('students', shape['students']),
        'assignments': ('assignments', shape['assignments']),
        'submissions': ('submissions', shape['students'] * shape['submissions']),
        'student submissions (instructor)': ('submissions', shape['submissions']),
        'student submissions (student)': ('submissions', shape['submissions']),
    }
    key, size = sizes.get(name, ('files', shape['files']))
    assert len(answer[key]) == size, (name, answer)


async def measure(srv, shape, stamps, courses) -> dict[str, list]:
    counts = {}
    for name, (segments, user, params) in endpoints(shape, stamps).items():
        answer, seen = await srv.counted(segments, user=user, params=params)
        expected_sizes(shape, name, answer, courses)
        counts[name] = seen
    return counts


async def test_list_endpoints_cost_constant_statements(counting_server):
    small_stamps = await populate(counting_server, SMALL)
    small = await measure(counting_server, SMALL, small_stamps, courses=1)
    large_stamps = await populate(counting_server, LARGE)
    for i in range(OTHER_COURSES):
        await counting_server.request('POST', ('course', f'Other {i}'), user=ADMIN)
    small_history = await measure_history(counting_server, SMALL)
    large = await measure(
        counting_server, LARGE, large_stamps, courses=2 + OTHER_COURSES
    )
    large_history = await measure_history(counting_server, LARGE)
    assert_same_counts(small_history, large_history, HISTORY_BUDGET)
    # The large course's pages are full: a short list was compared with a
    # long one, not two short ones.
    assert len(large_history['history (admin)'][0]['history']) == DEFAULT_PAGE
    assert small_history['history (admin)'][0]['next'] is None
    large_history = {name: seen for name, (_answer, seen) in large_history.items()}

    assert_same_counts(small, large, BUDGET)
    assert_plans_use_indexes(counting_server.runtime.engine, large | large_history)


def assert_same_counts(small: dict, large: dict, budget: int) -> None:
    """The same number of statements for the small and the large course, at
    most ``budget`` queries (values: statements, or (answer, statements))."""
    assert small.keys() == large.keys()
    for name in small:
        few, many = (
            seen if isinstance(seen, list) else seen[1]
            for seen in (small[name], large[name])
        )
        assert len(few) == len(many), (
            f'{name}: {len(few)} statements for {SMALL["students"]} '
            f'students, {len(many)} for {LARGE["students"]}\n'
            f'small:\n{describe(few)}\nlarge:\n{describe(many)}'
        )
        assert 1 <= len(queries(many)) <= budget, (
            f'{name}: {len(queries(many))} queries > {budget}\n' + describe(many)
        )


# --------------------------------------------------------------------------
# The history: a page, and what recording an action costs

DEFAULT_PAGE = 100  # the documented default of ``limit``
PERSON = {'first_name': 'F', 'last_name': 'L', 'email': 'e@x.org'}


def history_pages(shape, first: dict) -> dict[str, tuple[str, dict]]:
    """Name -> (caller, query) of every history page measured; ``first`` is
    an instructor's first page of three entries (its ``next``, its times)."""
    teacher = shape['instructors'][0]
    student = students_of(shape)[1]
    assignment = assignments_of(shape)[0]
    newest, third = first['history'][0], first['history'][-1]
    return {
        'history (admin)': (ADMIN, {}),
        'history (instructor)': (teacher, {}),
        'history (student)': (student, {}),
        'history (student, one action, oldest first)': (
            student,
            {'action': 'submit', 'order': 'oldest'},
        ),
        'history (of one student)': (teacher, {'student_id': student}),
        'history (of one assignment and action)': (
            teacher,
            {'assignment_id': assignment, 'action': 'release_feedback', 'limit': '5'},
        ),
        'history (since and until)': (
            teacher,
            {'since': third['time'], 'until': newest['time'], 'order': 'oldest'},
        ),
        'history (next page)': (teacher, {'limit': '3', 'cursor': first['next']}),
    }


def expected_ids(engine, course: str, own: str | None, params: dict) -> list[str]:
    """The entry IDs a page must answer, read with a statement of its own:
    the filters, a student's ``own`` entries, the order, the cursor, the
    limit."""
    history = HistoryEntry.__table__
    conditions = [history.c.course == course]
    if own is not None:
        conditions.append(history.c.student == own)
    for column, name in (
        (history.c.assignment, 'assignment_id'),
        (history.c.student, 'student_id'),
        (history.c.action, 'action'),
    ):
        if name in params:
            conditions.append(column == params[name])
    if 'since' in params:
        conditions.append(history.c.time >= parse_instant(params['since']))
    if 'until' in params:
        conditions.append(history.c.time < parse_instant(params['until']))
    oldest = params.get('order') == 'oldest'
    if 'cursor' in params:
        cursor = int(params['cursor'])
        conditions.append(history.c._id > cursor if oldest else history.c._id < cursor)
    order = history.c._id.asc() if oldest else history.c._id.desc()
    statement = (
        select(history.c._id)
        .where(*conditions)
        .order_by(order)
        .limit(int(params.get('limit', DEFAULT_PAGE)))
    )
    with engine.connect() as connection:
        return [str(_id) for _id in connection.scalars(statement)]


async def measure_history(srv, shape) -> dict[str, tuple[dict, list]]:
    """(answer, statements) of every page of :func:`history_pages` for the
    course of ``shape``, each answer checked against the rows."""
    course = shape['course']
    first = await srv.request(
        'GET', ('history', course), user=shape['instructors'][0], params={'limit': 3}
    )
    assert len(first['history']) == 3 and first['next'] is not None, first
    measured = {}
    for name, (user, params) in history_pages(shape, first).items():
        answer, seen = await srv.counted(('history', course), user=user, params=params)
        ids = [entry['id'] for entry in answer['history']]
        assert ids, (name, answer)
        own = user if user in students_of(shape) else None
        assert ids == expected_ids(srv.runtime.engine, course, own, params), name
        measured[name] = (answer, seen)
    return measured


def history_rows(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(HistoryEntry))


def people(prefix: str, count: int) -> dict:
    """The form of a bulk add of ``count`` students (``prefix``00, ...)."""
    roster = [
        {'username': f'{prefix}{i:02d}', **PERSON, 'email': f'{prefix}{i}@x.org'}
        for i in range(count)
    ]
    return {'students': json.dumps(roster)}


# Each action of a course (its path after the kind: 'instructor/rec-c' is
# instructor/Rec 101/rec-c), its form or query, then the INSERTs into
# history it sends and the entries it adds. FIRST and SECOND stand for the
# timestamps of the first and second submission.
FILES = {'files': encoded_tree({'task.ipynb': b'task'})}
TWO = {'instructors': json.dumps(['rec-a', 'rec-b'])}
LISTING = {'list_only': 'true'}
FIRST, SECOND = {'timestamp': 0}, {'timestamp': 1}
RECORDING = [
    ('create course', 'POST', 'course', ADMIN, TWO, 2, 3),
    ('add instructor', 'POST', 'instructor/rec-c', ADMIN, PERSON, 1, 1),
    ('add student', 'POST', 'student/rec-s', 'rec-a', PERSON, 1, 1),
    ('add 2 students', 'POST', 'students', 'rec-a', people('two', 2), 1, 2),
    ('add 20 students', 'POST', 'students', 'rec-a', people('many', 20), 1, 20),
    # Only who is newly enrolled is an action: an update is not.
    ('add 2 again, 1 new', 'POST', 'students', 'rec-a', people('two', 3), 1, 1),
    ('update a student', 'POST', 'student/rec-s', 'rec-a', PERSON, 0, 0),
    ('release', 'POST', 'assignment/ps', 'rec-a', FILES, 1, 1),
    ('fetch', 'GET', 'assignment/ps', 'rec-s', {}, 1, 1),
    ('look (list_only)', 'GET', 'assignment/ps', 'rec-s', LISTING, 0, 0),
    ("an instructor's download", 'GET', 'assignment/ps', 'rec-a', {}, 0, 0),
    ('submit', 'POST', 'submission/ps', 'rec-s', FILES, 1, 1),
    ('collect', 'GET', 'submission/ps/rec-s', 'rec-a', {}, 1, 1),
    ('collect (list_only)', 'GET', 'submission/ps/rec-s', 'rec-a', LISTING, 0, 0),
    ('release feedback', 'POST', 'feedback/ps/rec-s', 'rec-a', FILES | FIRST, 1, 1),
    ('fetch feedback', 'GET', 'feedback/ps/rec-s', 'rec-s', FIRST, 1, 1),
    ('submit again', 'POST', 'submission/ps', 'rec-s', FILES, 1, 1),
    ('fetch no feedback', 'GET', 'feedback/ps/rec-s', 'rec-s', SECOND, 0, 0),
    ('remove student', 'DELETE', 'student/two00', 'rec-a', {}, 1, 1),
    ('remove instructor', 'DELETE', 'instructor/rec-c', ADMIN, {}, 1, 1),
    ('unrelease', 'DELETE', 'assignment/ps', 'rec-a', {}, 1, 1),
    ('delete course', 'DELETE', 'course', ADMIN, {}, 1, 1),
]


async def test_each_action_writes_its_history_with_one_statement(counting_server):
    """Every action sends one INSERT into history (a new course two: its
    own entry, then one for its instructors), with one row per person it
    concerns, in one statement whatever their number; reads that are not
    actions send none."""
    srv, course = counting_server, 'Rec 101'
    await populate(srv, SMALL)
    stamps: list[str] = []
    sent = {}
    for name, method, where, user, fields, inserts, entries in RECORDING:
        kind, *rest = where.split('/')
        if 'timestamp' in fields:  # the index of a submission
            fields = {**fields, 'timestamp': stamps[fields['timestamp']]}
        # A DELETE's body is not read: its caller is named in the query.
        form = {'GET': {'params': fields}, 'DELETE': {'params': {'user': user}}}
        before = history_rows(srv.runtime.engine)
        srv.statements.start()
        try:
            answer = await srv.request(
                method,
                (kind, course, *rest),
                user=user,
                **form.get(method, {'data': fields}),
            )
        finally:
            seen = sent[name] = srv.statements.stop()
        if kind == 'submission' and method == 'POST':
            stamps.append(answer['timestamp'])
        written = [q for q, _ in seen if q.startswith('INSERT INTO history')]
        assert len(written) == inserts, f'{name}:\n{describe(seen)}'
        assert history_rows(srv.runtime.engine) - before == entries, name
    # Twenty students cost what two cost: the same statements.
    assert len(sent['add 20 students']) == len(sent['add 2 students']), (
        describe(sent['add 2 students']) + '\n---\n' + describe(sent['add 20 students'])
    )


# --------------------------------------------------------------------------
# Query plans of the list statements

# Statements that read every row on purpose (an admin's list of courses).
FULL_READS = ('SELECT courses.id \nFROM courses',)
SQLITE_FULL_SCAN = re.compile(r'\bSCAN (\w+)')


def assert_plans_use_indexes(engine, measured: dict[str, list]) -> None:
    """No statement of ``measured`` reads a whole table.

    SQLite: no ``SCAN`` in ``EXPLAIN QUERY PLAN`` (an index lookup is
    ``SEARCH``). PostgreSQL: tiny tables make a sequential scan the cheapest
    plan, so the planner is told to avoid them; a ``Seq Scan`` that remains
    has no index to use instead.
    """
    plans = {}
    with engine.connect() as connection:
        postgres = connection.dialect.name == 'postgresql'
        if postgres:
            connection.execute(text('SET enable_seqscan = off'))
        explain = 'EXPLAIN ' if postgres else 'EXPLAIN QUERY PLAN '
        for name, seen in measured.items():
            for statement, parameters in queries(seen):
                if statement.startswith(FULL_READS) and 'WHERE' not in statement:
                    continue
                rows = connection.exec_driver_sql(explain + statement, parameters)
                plans[name, statement] = '\n'.join(str(row[-1]) for row in rows)
        connection.rollback()
    assert len(plans) >= len(measured) - 1
    for (name, statement), plan in plans.items():
        if postgres:
            assert 'Seq Scan' not in plan, f'{name}:\n{statement}\n{plan}'
        else:
            assert not SQLITE_FULL_SCAN.search(plan), f'{name}:\n{statement}\n{plan}'
