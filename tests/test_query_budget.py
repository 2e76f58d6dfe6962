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
"""

from __future__ import annotations

import re

from _counting_server import (
    ADMIN,
    SMALL,
    assignments_of,
    describe,
    populate,
    queries,
    students_of,
)
from sqlalchemy import text

# The most queries any listing or reading endpoint may send (not counting
# the BEGIN that SQLite sends as a statement).
BUDGET = 6

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
    large = await measure(
        counting_server, LARGE, large_stamps, courses=2 + OTHER_COURSES
    )

    assert small.keys() == large.keys()
    for name in small:
        assert len(small[name]) == len(large[name]), (
            f'{name}: {len(small[name])} statements for {SMALL["students"]} '
            f'students, {len(large[name])} for {LARGE["students"]}\n'
            f'small:\n{describe(small[name])}\nlarge:\n{describe(large[name])}'
        )
        assert 1 <= len(queries(large[name])) <= BUDGET, (
            f'{name}: {len(queries(large[name]))} queries > {BUDGET}\n'
            + describe(large[name])
        )
    assert_plans_use_indexes(counting_server.runtime.engine, large)


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
