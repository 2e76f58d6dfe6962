"""A submit costs a bounded number of SQL statements, whatever its size.

The in-process server of :mod:`_counting_server` (SQLite and PostgreSQL)
counts the statements one ``POST /submission`` by a student sends. The tree
is decoded, hashed and stored before the write transaction (no statement
for that), so the transaction must stay a handful of statements plus one
per file at most: a regression that reads per row of the course, or per
file more than once, fails here. The list endpoints' budget is in
``test_query_budget.py``.
"""

from __future__ import annotations

from _counting_server import (
    SMALL,
    assignments_of,
    describe,
    encoded_tree,
    files_for,
    populate,
    queries,
    students_of,
)

# What one POST /submission by a student may send, not counting SQLite's
# BEGIN: the course, the assignment, the caller's membership and latest
# timestamp (one statement), the submission's row, the files' rows (one
# statement for the whole tree) and its history entry (one INSERT, issue 17)
# (SUBMIT_BUDGET), plus one statement per file at most (PostgreSQL: the
# shared blob lock of each file). Measured: SQLite 4, PostgreSQL 4 + files.
SUBMIT_BUDGET = 4
SUBMIT_PER_FILE = 1
SUBMIT_SIZES = (1, 2, 12)


async def test_submit_costs_a_bounded_number_of_statements(counting_server):
    """The write transaction of a submit is a handful of statements: the
    tree is decoded, hashed and stored before it (no statement for that),
    nothing is read per row of the course, and a file costs one statement
    at most."""
    await populate(counting_server, SMALL)
    student = students_of(SMALL)[0]
    path = ('submission', SMALL['course'], assignments_of(SMALL)[0])
    sent = {}
    for count in SUBMIT_SIZES:
        tree_json = encoded_tree(files_for(f'{student} {count}', count))
        counting_server.statements.start()
        try:
            await counting_server.request(
                'POST', path, user=student, data={'files': tree_json}
            )
        finally:
            sent[count] = queries(counting_server.statements.stop())
    for count, seen in sent.items():
        # Exactly one of them is the history entry, whatever the tree's size.
        entries = [s for s, _ in seen if s.startswith('INSERT INTO history')]
        assert len(entries) == 1, describe(seen)
        budget = SUBMIT_BUDGET + SUBMIT_PER_FILE * count
        assert 1 <= len(seen) <= budget, (
            f'a submit of {count} files: {len(seen)} queries > {budget}\n'
            + describe(seen)
        )
    small, large = SUBMIT_SIZES[1], SUBMIT_SIZES[-1]
    assert len(sent[large]) - len(sent[small]) <= SUBMIT_PER_FILE * (large - small), (
        describe(sent[small]) + '\n---\n' + describe(sent[large])
    )
