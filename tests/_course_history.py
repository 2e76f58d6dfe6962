"""After the e2e course: its history on ngshare agrees with what it did.

The course's exchange actions are known from the commands its users ran
(``Course.commands``: who ran what, whether it succeeded, what the client
printed, and when it started and ended), never from counts written here:

* each ``nbgrader release_assignment A`` → one ``release`` of A;
* each ``nbgrader fetch_assignment A`` a student ran that succeeded → one
  ``fetch`` (the plugins' ``list_only`` looks are not fetches);
* each ``Submitted as: C A TS`` a submit printed → one ``submit`` of TS;
* each ``Collecting``/``Updating submission: S A`` a collect printed → one
  ``collect`` of the submission the plugin downloads: S's latest one
  submitted before the collect, or with ``--before-duedate`` (which only
  ``ngshare.exchange`` honours) the latest ngshare judged on time;
* each ``Releasing feedback for student S ... (TS)`` → one
  ``release_feedback`` of TS;
* each ``nbgrader fetch_feedback A`` a student ran → one ``fetch_feedback``
  per submission of theirs whose feedback was released before it started.

:func:`check_course_history` reads ``GET /history/<course>?order=oldest``
page by page, and checks that those entries, and only those, are there,
once each, in an order that agrees with the commands' (one that ended
before another started has its entries first), and with what must precede
what (a submission's fetch, submit, collect, feedback release and fetch);
that they agree with ngshare's data (the submissions it lists, the files it
holds) and with the instructor's ``submitted/`` folder; and that the
instructor sees what the admin sees, each student the entries that concern
them.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import re

from _course_clients import NEW_CLIENT
from _course_deadline_material import judged_entries
from _course_harness import Course, Ran
from _course_material import COURSE, KEVIN
from nbgrader.utils import parse_utc

__all__ = ['check_course_history', 'read_history']

PAGE = 20  # small, so that the course's history takes several pages
MAX_PAGES = 500
FILE_ACTIONS = ('release', 'fetch', 'submit', 'collect', 'release_feedback')
CHECKED = (*FILE_ACTIONS, 'fetch_feedback')
# What must come before: the release of the assignment before a fetch,
# the student's fetch before a submit, then for each submission its submit,
# its collect, its feedback's release, before its feedback is fetched.
CAUSES = {
    'fetch': 'release',
    'submit': 'fetch',
    'collect': 'submit',
    'release_feedback': 'collect',
    'fetch_feedback': 'release_feedback',
}
# The tree (the endpoint) each action uploads or downloads.
TREES = {
    'release': 'assignment',
    'fetch': 'assignment',
    'submit': 'submission',
    'collect': 'submission',
    'release_feedback': 'feedback',
    'fetch_feedback': 'feedback',
}
UPLOADS = ('release', 'submit', 'release_feedback')
# The options of the course's nbgrader commands that take a value.
VALUED_OPTIONS = {'--course', '--student'}


@dataclasses.dataclass
class Expected:
    """An entry the history must have, and the command that made it."""

    action: str
    user: str
    student: str | None
    assignment: str
    stamp: datetime.datetime | None
    ran: Ran

    @property
    def key(self) -> tuple:
        return (self.action, self.user, self.student, self.assignment, self.stamp)

    def describe(self) -> str:
        return f'{self.key} from `{" ".join(self.ran.argv)}` (as {self.ran.user})'


def stamp(text: str | None) -> datetime.datetime | None:
    """A submission timestamp as an instant (the text as ngshare wrote it,
    or as a client wrote it back into a file)."""
    return None if text is None else parse_utc(text.strip())


def key_of(entry: dict) -> tuple:
    return (
        entry['action'],
        entry['user'],
        entry['student_id'],
        entry['assignment_id'],
        stamp(entry['timestamp']),
    )


# --------------------------------------------------------------------------
# reading the history


def read_history(user, course_id: str, **params: str) -> list[dict]:
    """Every entry ``user`` may see, oldest first, following ``next``."""
    entries: list[dict] = []
    cursor = None
    for _ in range(MAX_PAGES):
        query = {'order': 'oldest', 'limit': str(PAGE), **params}
        if cursor is not None:
            query['cursor'] = cursor
        body = user.api_ok('GET', 'history', course_id, params=query)
        page = body['history']
        assert len(page) <= PAGE, body
        entries += page
        cursor = body['next']
        if cursor is None:
            return entries
        assert page and cursor == page[-1]['id'], body
    raise AssertionError(f'more than {MAX_PAGES} pages of history')


def check_order(entries: list[dict]) -> None:
    """Ids strictly increase, and the server's ``time`` never goes back."""
    ids = [int(entry['id']) for entry in entries]
    assert ids == sorted(set(ids)), ids
    times = [datetime.datetime.fromisoformat(entry['time']) for entry in entries]
    assert all(t.utcoffset() == datetime.timedelta(0) for t in times), times
    back = [
        (a, b) for a, b, s, t in zip(entries, entries[1:], times, times[1:]) if t < s
    ]
    assert not back, f'time goes back: {back}'


def own_first(entries: list[dict]) -> int:
    """The id of the first entry of this run's ``create_course`` on."""
    starts = [int(e['id']) for e in entries if e['action'] == 'create_course']
    return starts[-1] if starts else int(entries[0]['id'])


def this_course(entries: list[dict], expected: list[Expected]) -> list[dict]:
    """This course's entries: those since the ``create_course`` that
    started it (a course of the same name may have been played, deleted and
    created again before, its history kept), until the next one."""
    starts = [i for i, e in enumerate(entries) if e['action'] == 'create_course']
    assert starts, f'no create_course in {entries}'
    runs = [
        entries[start:end] for start, end in zip(starts, [*starts[1:], len(entries)])
    ]
    submitted = {x.stamp for x in expected if x.action == 'submit'}
    mine = [run for run in runs if any(key_of(e)[4] in submitted for e in run)]
    assert len(mine) <= 1, f'submissions of this course in several runs: {runs}'
    return mine[0] if mine else runs[-1]


# --------------------------------------------------------------------------
# what the course did, from its commands


def succeeded(ran: Ran) -> bool:
    """The command did what it was asked: exit status 0, and no refusal
    printed (ngshare_exchange 0.5.3 exits 0 after most refusals)."""
    return ran.returncode == 0 and 'returned failure' not in ran.output


def positional(ran: Ran) -> list[str]:
    """The arguments of ``nbgrader SUBCOMMAND ...`` that are no options."""
    found, skip = [], False
    for word in ran.argv[2:]:
        if skip:
            skip = False
        elif word.startswith('-'):
            skip = word in VALUED_OPTIONS
        else:
            found.append(word)
    return found


def course_of(ran: Ran, default: str) -> str:
    argv = ran.argv
    for i, word in enumerate(argv):
        if word == '--course' and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith('--course='):
            return word.split('=', 1)[1]
    return default


def expected_entries(course: Course, course_id: str) -> list[Expected]:
    """The entries the course's commands made, in the order they ended."""
    late = judged_lateness(course, course_id)
    found: list[Expected] = []
    for ran in course.commands:
        if ran.argv[0] != 'nbgrader' or len(ran.argv) < 3 or not succeeded(ran):
            continue
        if course_of(ran, course_id) != course_id or not positional(ran):
            continue
        command, assignment = ran.argv[1], positional(ran)[0]
        named = re.escape(assignment)

        def add(action, student=None, when=None, ran=ran, assignment=assignment):
            found.append(Expected(action, ran.user, student, assignment, when, ran))

        if command == 'release_assignment':
            add('release')
        elif command == 'fetch_assignment':
            add('fetch', ran.user)
        elif command == 'submit':
            said = rf'Submitted as: {re.escape(course_id)} {named} (.+)$'
            for text in re.findall(said, ran.output, re.M):
                add('submit', ran.user, stamp(text))
        elif command == 'collect':
            pattern = rf'(?:Collecting|Updating) submission: (\S+) {named}\s*$'
            for student in re.findall(pattern, ran.output, re.M):
                made = [
                    x.stamp
                    for x in found
                    if (x.action, x.student, x.assignment)
                    == ('submit', student, assignment)
                    and x.ran.before(ran)
                ]
                assert made, f'{student} collected before submitting: {ran.describe()}'
                chosen = max(made)
                if '--before-duedate' in ran.argv and course.deployment.client is (
                    NEW_CLIENT
                ):
                    on_time = [s for s in made if not late[(assignment, student, s)]]
                    chosen = max(on_time, default=chosen)
                add('collect', student, chosen)
        elif command == 'release_feedback':
            pattern = (
                r'Releasing feedback for student ["\'](\S+?)["\'] on assignment'
                r' ["\']([^"\']+)["\'] \(([^()]+)\)'
            )
            for student, place, text in re.findall(pattern, ran.output):
                assert place.split('/')[:2] == [course_id, assignment], place
                add('release_feedback', student, stamp(text))
        elif command == 'fetch_feedback':
            released = {
                x.stamp
                for x in found
                if x.action == 'release_feedback'
                and (x.student, x.assignment) == (ran.user, assignment)
                and x.ran.before(ran)
            }
            for when in sorted(released):
                add('fetch_feedback', ran.user, when)
    return found


def judged_lateness(course: Course, course_id: str) -> dict:
    """``{(assignment, student, instant): late}`` of every submission
    ngshare lists (as the admin sees them)."""
    admin = course[course.deployment.admin]
    late = {}
    for assignment in admin.api_ok('GET', 'assignments', course_id)['assignments']:
        body = admin.api_ok('GET', 'submissions', course_id, assignment)
        for entry in judged_entries(body):
            when = stamp(entry['timestamp'])
            late[(assignment, entry['student_id'], when)] = entry['late']
    return late


# --------------------------------------------------------------------------
# the check


def check_course_history(
    course: Course, course_id: str = COURSE, instructor: str = KEVIN.name
) -> None:
    """The history of ``course_id`` agrees with what ``course`` did."""
    admin = course[course.deployment.admin]
    everything = read_history(admin, course_id)
    check_order(everything)
    # The instructor sees this course's entries as the admin does; of a
    # course of the same name deleted before, only the entry of its deletion
    # (its history is the admins' until it is purged).
    own = read_history(course[instructor], course_id)
    first = own_first(own)
    assert [e for e in everything if int(e['id']) >= first] == [
        e for e in own if int(e['id']) >= first
    ]
    earlier = [e for e in own if int(e['id']) < first]
    assert all(e['action'] == 'delete_course' for e in earlier), earlier

    expected = expected_entries(course, course_id)
    entries = [e for e in this_course(everything, expected) if e['action'] in CHECKED]
    matched = match(expected, entries)
    check_happened_before(matched)
    check_causes(matched)
    check_against_server(course, course_id, instructor, entries)
    check_collected_folders(course, entries)

    # Each student sees exactly the entries that concern them.
    for student in sorted({x.student for x in expected if x.student}):
        mine = [e for e in everything if e['student_id'] == student]
        assert read_history(course[student], course_id) == mine, student


def match(expected: list[Expected], entries: list[dict]) -> list[tuple]:
    """``(entry, Expected)`` pairs: every entry expected, once each."""
    wanted = collections.defaultdict(list)
    for item in sorted(expected, key=lambda x: x.ran.started):
        wanted[item.key].append(item)
    got = collections.defaultdict(list)
    for entry in entries:
        got[key_of(entry)].append(entry)
    wrong = [
        f'{key}: {len(got[key])} entries, expected {len(wanted[key])} from '
        + '; '.join(x.describe() for x in wanted[key])
        for key in wanted.keys() | got.keys()
        if len(got[key]) != len(wanted[key])
    ]
    assert not wrong, '\n'.join(['the history disagrees with the course:', *wrong])
    return [
        (entry, item)
        for key in wanted
        for entry, item in zip(got[key], wanted[key], strict=True)
    ]


def check_happened_before(matched: list[tuple]) -> None:
    """A command that ended before another started has its entries first."""
    wrong = [
        f'{x.describe()} (id {e["id"]}) ran before {y.describe()} (id {f["id"]})'
        for e, x in matched
        for f, y in matched
        if x.ran.before(y.ran) and int(e['id']) >= int(f['id'])
    ]
    assert not wrong, '\n'.join(wrong)


def check_causes(matched: list[tuple]) -> None:
    """Per student and assignment: released, fetched, then submitted; each
    submission submitted, collected, its feedback released, then fetched,
    in that order."""
    ids = collections.defaultdict(list)
    for entry, item in matched:
        ids[(item.action, item.student, item.assignment, item.stamp)].append(
            int(entry['id'])
        )
    for (action, student, assignment, when), found in ids.items():
        cause = CAUSES.get(action)
        if cause is None:
            continue
        whose = None if action == 'fetch' else student  # released to all
        which = None if action == 'submit' else when  # fetched once for all
        before = ids.get((cause, whose, assignment, which))
        assert before and min(before) < min(found), (
            f'{action} of {student} {assignment} {when}: no {cause} before it'
            f' ({cause} ids {before}, {action} ids {found})'
        )


def check_against_server(
    course: Course, course_id: str, instructor: str, entries: list[dict]
) -> None:
    """The entries agree with ngshare's data: the ``submit`` entries are the
    submissions it lists; the latest upload of each tree (a release, a
    submission, a feedback) has the files it holds; each download moved
    what the upload it downloaded brought."""
    kevin = course[instructor]
    listed = set()
    for assignment in sorted({e['assignment_id'] for e in entries}):
        body = kevin.api_ok('GET', 'submissions', course_id, assignment)
        listed |= {
            (assignment, s['student_id'], stamp(s['timestamp']))
            for s in body['submissions']
        }
    submits = [e for e in entries if e['action'] == 'submit']
    recorded = {
        (e['assignment_id'], e['student_id'], stamp(e['timestamp'])) for e in submits
    }
    assert recorded == listed, (submits, listed)

    uploads: dict[tuple, dict] = {}  # the latest upload of each tree so far
    for entry in entries:  # oldest first
        action = entry['action']
        if action in FILE_ACTIONS:
            assert entry['files'] > 0 and entry['bytes'] > 0, entry
        kind = TREES[action]
        if kind == 'assignment':  # one tree for every student
            tree = (kind, None, entry['assignment_id'], None)
        else:
            tree = (kind, *key_of(entry)[2:])  # student, assignment, stamp
        if action in UPLOADS:
            uploads[tree] = entry
        else:
            upload = uploads.get(tree)
            assert upload is not None, f'{entry}: downloaded before its upload'
            assert (entry['files'], entry['bytes']) == (
                upload['files'],
                upload['bytes'],
            ), (entry, upload)
    for (kind, student, assignment, _), entry in uploads.items():
        params = {'list_only': 'true', 'timestamp': entry['timestamp']}
        segments = [kind, course_id, assignment, student]
        if student is None:
            segments, params = segments[:3], {'list_only': 'true'}
        body = kevin.api_ok('GET', *segments, params=params)
        assert entry['files'] == len(body['files']), (entry, body)


def check_collected_folders(course: Course, entries: list[dict]) -> None:
    """Each student's ``submitted/`` folder holds what was collected last."""
    last = {}
    for entry in entries:
        if entry['action'] == 'collect':
            last[(entry['student_id'], entry['assignment_id'])] = entry
    for (student, assignment), entry in last.items():
        path = course.course_dir / 'submitted' / student / assignment
        text = (path / 'timestamp.txt').read_text()
        assert stamp(text) == stamp(entry['timestamp']), (entry, text)
