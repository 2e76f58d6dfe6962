"""Submissions and feedback, called as operations (no HTTP): submit, list,
get by timestamp, upload and replace feedback; who may do what; and the
blob lifecycle of replaced feedback (released, not deleted, while the grace
period lasts; removed at once with a grace of 0 unless still referenced).

Timestamps are checked against the clock read around the call and against
each other, files against the bytes the test uploaded."""

from __future__ import annotations

import datetime

import pytest
from _operations import (
    ADMIN,
    INSTRUCTOR,
    OTHER_STUDENT,
    OUTSIDER,
    ROLES,
    STUDENT,
    expected_files,
    files_json,
)
from sqlalchemy import update

from ngshare.blobs.store import blob_key
from ngshare.database.models import Submission
from ngshare.operations.assignments import release_assignment
from ngshare.operations.feedback import get_feedback, upload_feedback
from ngshare.operations.released import sweep_released
from ngshare.operations.roster import remove_student
from ngshare.operations.submissions import (
    get_submission,
    list_student_submissions,
    list_submissions,
    submit,
)
from ngshare.timestamps import utc_now

DENIED = (403, 'Permission denied')
WORK = {'a.ipynb': b'{"answer": 42}', 'notes/n.txt': b'mine'}
FORMAT = '%Y-%m-%d %H:%M:%S.%f UTC'


# The lateness of a submission to an assignment without a due date.
ON_TIME = {'due': None, 'late': False, 'seconds_late': 0.0}


def released(ops, files=None):
    ops.write(
        INSTRUCTOR, release_assignment, 'c', 'a', files_json(files or {'q': b'q'})
    )


@pytest.fixture
def hw(course_ops):
    """Course ``c`` with assignment ``a`` released."""
    released(course_ops)
    return course_ops


def turn_in(ops, who=STUDENT, files=WORK) -> str:
    return ops.write(who, submit, 'c', 'a', files_json(files))['timestamp']


def parse(timestamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(timestamp, FORMAT)


# Submit


def test_submit_answers_the_time_in_the_documented_format(hw):
    before = utc_now()
    timestamp = turn_in(hw)
    after = utc_now()
    assert before <= parse(timestamp) <= after
    got = hw.read(INSTRUCTOR, get_submission, 'c', 'a', STUDENT, timestamp)
    assert got['timestamp'] == timestamp
    assert [(f.path, f.checksum) for f in got['files']] == expected_files(WORK)
    assert hw.tree(got) == WORK


def test_timestamps_of_one_student_strictly_increase(hw):
    stamps = [turn_in(hw, files={'n': str(i).encode()}) for i in range(5)]
    assert [parse(s) for s in stamps] == sorted({parse(s) for s in stamps})
    listed = hw.read(STUDENT, list_student_submissions, 'c', 'a', STUDENT)
    assert listed == {
        'submissions': [{'student_id': STUDENT, 'timestamp': s} for s in stamps],
        'lateness': [ON_TIME] * len(stamps),
    }
    # Each timestamp names its own files.
    for i, stamp in enumerate(stamps):
        got = hw.read(INSTRUCTOR, get_submission, 'c', 'a', STUDENT, stamp)
        assert hw.tree(got) == {'n': str(i).encode()}


def test_a_clock_that_steps_back_still_gives_a_later_timestamp(hw):
    """The student's latest submission is an hour ahead of the clock (the
    clock stepped back): the next one is stamped one microsecond after it,
    not with the clock's time."""
    turn_in(hw)
    ahead = utc_now().replace(microsecond=0) + datetime.timedelta(hours=1)
    with hw.unit() as ctx:
        ctx.session.execute(update(Submission).values(timestamp=ahead))
        ctx.session.commit()
    stamp = turn_in(hw, files={'v': b'2'})
    assert stamp == (ahead + datetime.timedelta(microseconds=1)).strftime(FORMAT)
    # Another student's clock is not affected by it.
    assert parse(turn_in(hw, OTHER_STUDENT)) < ahead


def test_list_submissions_in_time_order_across_students(hw):
    order = [STUDENT, OTHER_STUDENT, STUDENT, INSTRUCTOR]
    stamps = [turn_in(hw, who) for who in order]
    answer = hw.read(INSTRUCTOR, list_submissions, 'c', 'a')
    assert answer == {
        'submissions': [
            {'student_id': who, 'timestamp': stamp} for who, stamp in zip(order, stamps)
        ],
        'lateness': [ON_TIME] * len(order),
    }


@pytest.mark.parametrize('who', ROLES)
def test_submit_permissions(hw, who):
    expected = 403 if who == OUTSIDER else 200
    status, _ = hw.answers(who, submit, 'c', 'a', files_json(WORK), write=True)
    assert status == expected
    assert hw.count(Submission) == (0 if expected == 403 else 1)
    assert (blob_key(WORK['notes/n.txt']) in hw.blob_keys()) == (expected == 200)


def test_submit_refusals(hw):
    assert hw.answers(STUDENT, submit, 'c', 'nope', files_json(WORK), write=True) == (
        404,
        'Assignment not found',
    )
    assert hw.answers(STUDENT, submit, 'nope', 'a', files_json(WORK), write=True) == (
        404,
        'Course not found',
    )
    assert hw.answers(STUDENT, submit, 'c', 'a', None, write=True) == (
        400,
        'Please supply files',
    )
    assert hw.count(Submission) == 0


@pytest.mark.parametrize(
    ('who', 'expected'),
    [(ADMIN, 200), (INSTRUCTOR, 200), (STUDENT, 403), (OUTSIDER, 403)],
)
def test_list_submissions_is_for_instructors(hw, who, expected):
    turn_in(hw)
    assert hw.answers(who, list_submissions, 'c', 'a')[0] == expected


@pytest.mark.parametrize(
    ('who', 'expected'),
    [
        (ADMIN, 200),
        (INSTRUCTOR, 200),
        (STUDENT, 200),
        (OTHER_STUDENT, 403),
        (OUTSIDER, 403),
    ],
)
def test_list_student_submissions_own_only(hw, who, expected):
    stamp = turn_in(hw)
    status, answer = hw.answers(who, list_student_submissions, 'c', 'a', STUDENT)
    assert status == expected
    if expected == 200:
        assert answer == {
            'submissions': [{'student_id': STUDENT, 'timestamp': stamp}],
            'lateness': [ON_TIME],
        }


def test_list_student_submissions_of_nobody(hw):
    assert hw.read(
        OTHER_STUDENT, list_student_submissions, 'c', 'a', OTHER_STUDENT
    ) == {'submissions': [], 'lateness': []}
    assert hw.answers(INSTRUCTOR, list_student_submissions, 'c', 'a', OUTSIDER) == (
        404,
        'Student not found',
    )


def test_a_removed_student_who_submitted_is_still_found(hw):
    stamp = turn_in(hw)
    turn_in(hw, OTHER_STUDENT)
    hw.write(INSTRUCTOR, remove_student, 'c', STUDENT)
    hw.write(INSTRUCTOR, remove_student, 'c', OTHER_STUDENT)
    listed = hw.read(INSTRUCTOR, list_student_submissions, 'c', 'a', STUDENT)
    assert listed == {
        'submissions': [{'student_id': STUDENT, 'timestamp': stamp}],
        'lateness': [ON_TIME],
    }
    assert hw.tree(hw.read(INSTRUCTOR, get_submission, 'c', 'a', STUDENT, None)) == WORK
    # No longer in the course: they may not look themselves.
    assert hw.answers(STUDENT, list_student_submissions, 'c', 'a', STUDENT) == DENIED


# Get by timestamp


def test_get_submission_latest_without_a_timestamp(hw):
    turn_in(hw, files={'v': b'1'})
    last = turn_in(hw, files={'v': b'2'})
    got = hw.read(INSTRUCTOR, get_submission, 'c', 'a', STUDENT, None)
    assert got['timestamp'] == last
    assert hw.tree(got) == {'v': b'2'}


def test_get_submission_accepts_the_timestamp_without_zone(hw):
    stamp = turn_in(hw)
    got = hw.read(INSTRUCTOR, get_submission, 'c', 'a', STUDENT, stamp[: -len(' UTC')])
    assert got['timestamp'] == stamp


def test_get_submission_refusals(hw):
    stamp = turn_in(hw)
    other = (parse(stamp) + datetime.timedelta(microseconds=1)).strftime(FORMAT)
    cases = {
        'not a time': (400, 'Time format incorrect'),
        other: (404, 'Submission not found'),
    }
    for timestamp, expected in cases.items():
        answer = hw.answers(INSTRUCTOR, get_submission, 'c', 'a', STUDENT, timestamp)
        assert answer == expected, timestamp
    assert hw.answers(INSTRUCTOR, get_submission, 'c', 'a', OTHER_STUDENT, None) == (
        404,
        'Submission not found',
    )
    assert hw.answers(INSTRUCTOR, get_submission, 'c', 'a', OUTSIDER, None) == (
        404,
        'Student not found',
    )
    # A student may not download submissions, not even their own.
    assert hw.answers(STUDENT, get_submission, 'c', 'a', STUDENT, stamp) == DENIED


@pytest.mark.parametrize(
    ('who', 'expected'),
    [
        (ADMIN, 200),
        (INSTRUCTOR, 200),
        (STUDENT, 403),
        (OTHER_STUDENT, 403),
        (OUTSIDER, 403),
    ],
)
def test_get_submission_is_for_instructors(hw, who, expected):
    stamp = turn_in(hw)
    status, answer = hw.answers(who, get_submission, 'c', 'a', STUDENT, stamp)
    assert status == expected
    if expected == 200:
        assert hw.tree(answer) == WORK


# Feedback


def test_feedback_upload_then_get(hw):
    stamp = turn_in(hw)
    notes = {'feedback/a.html': b'<p>good</p>'}
    assert (
        hw.write(
            INSTRUCTOR, upload_feedback, 'c', 'a', STUDENT, stamp, files_json(notes)
        )
        == {}
    )
    got = hw.read(STUDENT, get_feedback, 'c', 'a', STUDENT, stamp)
    assert got['timestamp'] == stamp
    assert [(f.path, f.checksum) for f in got['files']] == expected_files(notes)
    assert hw.tree(got) == notes


def test_feedback_of_a_submission_without_any_is_empty(hw):
    stamp = turn_in(hw)
    assert hw.read(STUDENT, get_feedback, 'c', 'a', STUDENT, stamp) == {
        'timestamp': stamp,
        'files': [],
    }


@pytest.mark.parametrize(
    ('who', 'upload', 'get'),
    [
        (ADMIN, 200, 200),
        (INSTRUCTOR, 200, 200),
        (STUDENT, 403, 200),
        (OTHER_STUDENT, 403, 403),
        (OUTSIDER, 403, 403),
    ],
)
def test_feedback_permissions(hw, who, upload, get):
    stamp = turn_in(hw)
    args = ('c', 'a', STUDENT, stamp)
    assert (
        hw.answers(who, upload_feedback, *args, files_json({'f': b'x'}), write=True)[0]
        == upload
    )
    assert hw.answers(who, get_feedback, *args)[0] == get


def test_feedback_refusals(hw):
    stamp = turn_in(hw)
    files = files_json({'f': b'x'})
    cases = [
        ((STUDENT, None, files), (400, 'Please supply timestamp')),
        ((STUDENT, 'yesterday', files), (400, 'Time format incorrect')),
        (
            (STUDENT, '2001-01-01 00:00:00.000000 UTC', files),
            (404, 'Submission not found'),
        ),
        ((OUTSIDER, stamp, files), (404, 'Student not found')),
        ((STUDENT, stamp, None), (400, 'Please supply files')),
    ]
    for (student, timestamp, body), expected in cases:
        answer = hw.answers(
            INSTRUCTOR, upload_feedback, 'c', 'a', student, timestamp, body, write=True
        )
        assert answer == expected, (student, timestamp)
    assert hw.answers(STUDENT, get_feedback, 'c', 'a', STUDENT, None) == (
        400,
        'Please supply timestamp',
    )
    assert hw.read(STUDENT, get_feedback, 'c', 'a', STUDENT, stamp)['files'] == []


def test_replaced_feedback_is_released_not_deleted_during_the_grace(hw):
    stamp = turn_in(hw)
    args = ('c', 'a', STUDENT, stamp)
    hw.write(INSTRUCTOR, upload_feedback, *args, files_json({'f': b'first'}))
    hw.write(INSTRUCTOR, upload_feedback, *args, files_json({'g': b'second'}))
    assert hw.tree(hw.read(STUDENT, get_feedback, *args)) == {'g': b'second'}
    old = blob_key(b'first')
    # Still stored for downloads in flight, and recorded for the sweep.
    assert hw.store.exists(old)
    assert hw.released_keys() == {old}
    grace = hw.runtime.config.released_blob_grace_seconds
    # A sweep before the grace is over removes nothing; after it, the blob.
    sweep = dict(grace_seconds=grace, reader=hw.runtime.reader)
    assert sweep_released(hw.runtime.writer, hw.store, **sweep) == 0
    assert hw.store.exists(old)
    later = utc_now() + datetime.timedelta(seconds=grace + 1)
    assert sweep_released(hw.runtime.writer, hw.store, now=later, **sweep) == 1
    assert not hw.store.exists(old)
    assert hw.released_keys() == set()
    assert hw.tree(hw.read(STUDENT, get_feedback, *args)) == {'g': b'second'}


def test_replaced_feedback_with_no_grace_is_removed_at_once_unless_shared(ops):
    hw = ops.with_flags('--released-blob-grace', '0')
    hw.course()
    released(hw, {'q': b'also in the assignment'})
    stamp = turn_in(hw)
    args = ('c', 'a', STUDENT, stamp)
    first = {'f': b'first', 'shared': b'also in the assignment'}
    hw.write(INSTRUCTOR, upload_feedback, *args, files_json(first))
    hw.write(INSTRUCTOR, upload_feedback, *args, files_json({'g': b'second'}))
    assert not hw.store.exists(blob_key(b'first'))
    # Still referenced by the assignment's file: kept.
    assert hw.store.exists(blob_key(b'also in the assignment'))
    assert hw.released_keys() == set()
    assert hw.tree(hw.read(STUDENT, get_feedback, *args)) == {'g': b'second'}


def test_feedback_replaced_by_the_same_content_stays(ops):
    hw = ops.with_flags('--released-blob-grace', '0')
    hw.course()
    released(hw)
    stamp = turn_in(hw)
    args = ('c', 'a', STUDENT, stamp)
    hw.write(INSTRUCTOR, upload_feedback, *args, files_json({'f': b'same'}))
    hw.write(INSTRUCTOR, upload_feedback, *args, files_json({'renamed': b'same'}))
    assert hw.tree(hw.read(STUDENT, get_feedback, *args)) == {'renamed': b'same'}
