"""What the nbgrader course of the end-to-end tests is made of.

The cast (an admin, two instructors, three students who answer, one added
and removed, one never enrolled), the assignment (a notebook with an
autograded answer cell and a test cell worth :data:`POINTS`, plus a data
file), the answers each student gives and the scores they must get, and the
helpers that read what nbgrader and ngshare made of them (the gradebook,
the feedback's score, the roster through the API, the client's submission
cache). The phases that use them are :mod:`_course_scenario` and
:mod:`_course_grading`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from pathlib import Path

from _course_harness import ADMIN_NAME, Course, User

COURSE = 'NBG101'
ASSIGNMENT = 'ps1'
NOTEBOOK = f'{ASSIGNMENT}.ipynb'
DATA_FILE = 'data/input.csv'
DATA = b'value\n1\n2\n3\n'
POINTS = 3.0
BOGUS_TOKEN = 'not-a-token-the-hub-knows'  # noqa: S105 (a test value)

# Cell sources. The answer cell is an autograded answer ("solution") whose
# solution nbgrader removes; the test cell is worth POINTS.
ANSWER_SOURCE = textwrap.dedent(
    """\
    import csv


    def total(path):
        ### BEGIN SOLUTION
        with open(path) as handle:
            return sum(int(row['value']) for row in csv.DictReader(handle))
        ### END SOLUTION
    """
)
RIGHT_ANSWER = textwrap.dedent(
    """\
    import csv


    def total(path):
        with open(path) as handle:
            return sum(int(row['value']) for row in csv.DictReader(handle))
    """
)
WRONG_ANSWER = textwrap.dedent(
    """\
    def total(path):
        return -1
    """
)
TEST_SOURCE = f"assert total('{DATA_FILE}') == 6"


@dataclasses.dataclass
class Person:
    name: str
    first_name: str = ''
    last_name: str = ''
    email: str = ''


KEVIN = Person('kevin', 'Kevin', 'Ko', 'kevin@example.org')
ABIGAIL = Person('abigail', 'Abigail', 'Adams', 'abigail@example.org')
LAWRENCE = Person('lawrence', 'Lawrence', 'Lee', 'lawrence@example.org')
ERIC = Person('eric', 'Eric', 'Evans', 'eric@example.org')
ERIC_UPDATED = Person('eric', 'Eric', 'Evans-Smith', 'eric.evans@example.org')
GRACE = Person('grace', 'Grace', 'Hopper', 'grace@example.org')
MALLORY = Person('mallory')  # added from the CSV with blank cells, then removed
OSCAR = Person('oscar')  # never enrolled

# lawrence answers right, eric wrong, grace first wrong and then right.
ANSWERS = {
    LAWRENCE.name: [RIGHT_ANSWER],
    ERIC.name: [WRONG_ANSWER],
    GRACE.name: [WRONG_ANSWER, RIGHT_ANSWER],
}
EXPECTED_SCORE = {LAWRENCE.name: POINTS, ERIC.name: 0.0, GRACE.name: POINTS}
ALL_USERS = [
    ADMIN_NAME,
    KEVIN.name,
    ABIGAIL.name,
    LAWRENCE.name,
    ERIC.name,
    GRACE.name,
    MALLORY.name,
    OSCAR.name,
]


# --------------------------------------------------------------------------
# helpers for the notebook, the gradebook and the feedback


def source_notebook() -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata['kernelspec'] = {
        'name': 'python3',
        'display_name': 'Python 3',
        'language': 'python',
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f'Write `total(path)`: the sum of the `value` column of `{DATA_FILE}`.'
        ),
        nbformat.v4.new_code_cell(
            ANSWER_SOURCE,
            metadata={
                'nbgrader': {
                    'grade': False,
                    'solution': True,
                    'locked': False,
                    'task': False,
                    'grade_id': 'answer',
                    'schema_version': 3,
                }
            },
        ),
        nbformat.v4.new_code_cell(
            TEST_SOURCE,
            metadata={
                'nbgrader': {
                    'grade': True,
                    'solution': False,
                    'locked': True,
                    'task': False,
                    'points': POINTS,
                    'grade_id': 'test_total',
                    'schema_version': 3,
                }
            },
        ),
    ]
    return nbformat.writes(nb)


def answer(path: Path, source: str) -> None:
    """Write ``source`` into the answer cell of the student's notebook."""
    nb = json.loads(path.read_text('utf-8'))
    cells = [
        cell
        for cell in nb['cells']
        if cell.get('metadata', {}).get('nbgrader', {}).get('grade_id') == 'answer'
    ]
    assert len(cells) == 1, f'no single answer cell in {path}'
    cells[0]['source'] = source
    path.write_text(json.dumps(nb, indent=1), 'utf-8')


def gradebook(course_dir: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f'sqlite:///{course_dir / "gradebook.db"}')


def gradebook_students(course_dir: Path) -> dict[str, tuple]:
    with gradebook(course_dir) as gb:
        return {
            s.id: (s.first_name or '', s.last_name or '', s.email or '')
            for s in gb.students
        }


def score_in(html: str) -> str | None:
    match = re.search(rf'{ASSIGNMENT} \(Score: ([0-9.]+) / ([0-9.]+)\)', html)
    return f'{match.group(1)} / {match.group(2)}' if match else None


def roster(user: User) -> dict[str, tuple]:
    body = user.api_ok('GET', 'students', COURSE)
    return {
        s['username']: (s['first_name'], s['last_name'], s['email'])
        for s in body['students']
    }


def person_tuple(person: Person) -> tuple:
    return (person.first_name, person.last_name, person.email)


def cache_dirs(user: User) -> dict[str, Path]:
    """The client's submission cache: ``{timestamp: folder}``."""
    cache = user.home / '.local' / 'share' / 'jupyter' / 'nbgrader_cache' / COURSE
    found = {}
    for path in cache.glob(f'{user.name}+{ASSIGNMENT}+*'):
        found[path.name.split('+', 2)[2]] = path
    return found


def new_course(deployment, root: Path) -> Course:
    """The course :data:`COURSE`: every user of :data:`ALL_USERS`, kevin teaching."""
    return Course(
        deployment, root, users=ALL_USERS, course_id=COURSE, instructor=KEVIN.name
    )
