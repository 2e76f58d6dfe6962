"""Deleted courses and assignments, called as operations (no HTTP): kept on
delete, listed, restored (whole, under another name, or only their
submissions), purged once expired; and what happens to their blobs (kept
while restorable, released when not kept, removed only when nothing refers
to them).

``restore`` runs as ``ngshare-admin deleted restore`` runs it: in a raw
Context inside a write session that commits only when it succeeds."""

from __future__ import annotations

import datetime

import pytest
from _operations import ADMIN, INSTRUCTOR, OTHER_STUDENT, PERSON, STUDENT, files_json

from ngshare.blobs.lifecycle import remove_unreferenced
from ngshare.blobs.store import blob_key
from ngshare.database.models import Assignment, Course, DeletedItem, File, Submission
from ngshare.operations.assignments import (
    delete_assignment,
    get_assignment,
    list_assignments,
    release_assignment,
)
from ngshare.operations.courses import delete_course, list_courses
from ngshare.operations.deleted import (
    RestoreError,
    list_deleted,
    purge_expired,
    restore,
)
from ngshare.operations.feedback import get_feedback, upload_feedback
from ngshare.operations.roster import get_student, list_instructors
from ngshare.operations.submissions import list_student_submissions, submit
from ngshare.timestamps import parse_timestamp, utc_now

RELEASED = {'q.ipynb': b'question'}
WORK = {'q.ipynb': b'answer'}
NOTES = {'q.html': b'well done'}
ADMIN_TOOL = 'ngshare-admin'


def populate(ops, assignment='a', tag=b''):
    """Release, two submissions (one with feedback); their timestamps."""
    ops.write(
        INSTRUCTOR,
        release_assignment,
        'c',
        assignment,
        files_json({k: v + tag for k, v in RELEASED.items()}),
    )
    mine = ops.write(STUDENT, submit, 'c', assignment, files_json(WORK))['timestamp']
    theirs = ops.write(OTHER_STUDENT, submit, 'c', assignment, files_json({'o': b'o'}))
    ops.write(
        INSTRUCTOR,
        upload_feedback,
        'c',
        assignment,
        STUDENT,
        mine,
        files_json(NOTES),
    )
    return mine, theirs['timestamp']


def kept(ops) -> list[dict]:
    with ops.runtime.reader() as session:
        return list_deleted(session)


def restored(ops, item_id, **options) -> str:
    """Restore as ``ngshare-admin`` does; its message."""
    with ops.unit(ADMIN_TOOL) as ctx:
        message = restore(ctx, item_id, **options)
        ctx.session.commit()
    return message


def refused_restore(ops, item_id, **options) -> str:
    with pytest.raises(RestoreError) as caught, ops.unit(ADMIN_TOOL) as ctx:
        restore(ctx, item_id, **options)
    return str(caught.value)


def all_blobs():
    contents = [*RELEASED.values(), *WORK.values(), b'o', *NOTES.values()]
    return {blob_key(content) for content in contents}


def test_deleted_assignment_is_kept_and_listed(course_ops):
    populate(course_ops)
    before = utc_now()
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    after = utc_now()
    [item] = kept(course_ops)
    assert before <= parse_timestamp(item.pop('deleted_at')) <= after
    assert item == {
        'id': item['id'],
        'kind': 'assignment',
        'course': 'c',
        'assignment': 'a',
        'deleted_by': INSTRUCTOR,
        'assignments': 1,
        'submissions': 2,
    }
    # Gone from the API and the tables, its blobs stored and not released.
    assert course_ops.read(STUDENT, list_assignments, 'c')['assignments'] == []
    assert course_ops.count(Submission) == 0
    assert course_ops.count(File) == 0
    assert course_ops.blob_keys() == all_blobs()
    assert course_ops.released_keys() == set()


def test_restore_an_assignment_whole(course_ops):
    mine, theirs = populate(course_ops)
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    [item] = kept(course_ops)
    message = restored(course_ops, item['id'])
    assert message == "restored assignment 'a' of 'c' with 2 submissions"
    assert kept(course_ops) == []
    got = course_ops.read(STUDENT, get_assignment, 'c', 'a')
    assert course_ops.tree(got) == RELEASED
    listed = course_ops.read(STUDENT, list_student_submissions, 'c', 'a', STUDENT)
    assert listed['submissions'] == [{'student_id': STUDENT, 'timestamp': mine}]
    feedback = course_ops.read(STUDENT, get_feedback, 'c', 'a', STUDENT, mine)
    assert course_ops.tree(feedback) == NOTES
    theirs_listed = course_ops.read(
        OTHER_STUDENT, list_student_submissions, 'c', 'a', OTHER_STUDENT
    )
    assert [s['timestamp'] for s in theirs_listed['submissions']] == [theirs]


def test_restore_submissions_into_the_re_released_assignment(course_ops):
    """The repair after ``nbgrader release_assignment --force``."""
    mine, _ = populate(course_ops)
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    course_ops.write(
        INSTRUCTOR, release_assignment, 'c', 'a', files_json({'q.ipynb': b'v2'})
    )
    [item] = kept(course_ops)
    assert refused_restore(course_ops, item['id']) == (
        "assignment 'a' exists in 'c': restore it --as another name, or use "
        '--submissions-only to add its submissions to the existing one'
    )
    message = restored(course_ops, item['id'], submissions_only=True)
    assert message == "added 2 submissions to assignment 'a' of 'c'"
    # The new release stays; the old submissions and feedback are back.
    got = course_ops.read(STUDENT, get_assignment, 'c', 'a')
    assert course_ops.tree(got) == {'q.ipynb': b'v2'}
    feedback = course_ops.read(STUDENT, get_feedback, 'c', 'a', STUDENT, mine)
    assert course_ops.tree(feedback) == NOTES


def test_restore_an_assignment_as_another_name(course_ops):
    populate(course_ops)
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    [item] = kept(course_ops)
    message = restored(course_ops, item['id'], as_name='a (old)')
    assert message == "restored assignment 'a (old)' of 'c' with 2 submissions"
    assert course_ops.read(STUDENT, list_assignments, 'c')['assignments'] == ['a (old)']


def test_restore_refusals_change_nothing(course_ops):
    populate(course_ops)
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    [item] = kept(course_ops)
    assert refused_restore(course_ops, item['id'] + 1) == (
        f'no deleted item {item["id"] + 1}'
    )
    assert refused_restore(
        course_ops, item['id'], as_name='b', submissions_only=True
    ) == ("assignment 'b' does not exist in 'c'")
    course_ops.store.delete(blob_key(b'answer'))
    assert refused_restore(course_ops, item['id']) == (
        f'1 stored files of item {item["id"]} are missing'
    )
    assert len(kept(course_ops)) == 1
    assert course_ops.count(Assignment) == 0


def test_deleted_course_is_kept_and_restored_with_roster(course_ops):
    mine, _ = populate(course_ops)
    course_ops.write(ADMIN, delete_course, 'c')
    assert course_ops.read(ADMIN, list_courses) == {'courses': []}
    [item] = kept(course_ops)
    assert (item['kind'], item['course'], item['assignment']) == ('course', 'c', None)
    assert (item['deleted_by'], item['assignments'], item['submissions']) == (
        ADMIN,
        1,
        2,
    )
    assert refused_restore(course_ops, item['id'], submissions_only=True) == (
        '--submissions-only applies to assignments'
    )
    message = restored(course_ops, item['id'])
    assert message == "restored course 'c' with 1 assignments"
    assert course_ops.read(STUDENT, list_courses) == {'courses': ['c']}
    assert course_ops.read(STUDENT, get_student, 'c', STUDENT) == {
        'username': STUDENT,
        **PERSON,
    }
    assert [
        e['username']
        for e in course_ops.read(STUDENT, list_instructors, 'c')['instructors']
    ] == [INSTRUCTOR]
    feedback = course_ops.read(STUDENT, get_feedback, 'c', 'a', STUDENT, mine)
    assert course_ops.tree(feedback) == NOTES


def test_restore_course_whose_name_is_taken(course_ops):
    course_ops.write(ADMIN, delete_course, 'c')
    [item] = kept(course_ops)
    course_ops.course('c', students=[])
    assert refused_restore(course_ops, item['id']) == (
        "a course named 'c' exists; restore it --as another name"
    )
    assert restored(course_ops, item['id'], as_name='c2') == (
        "restored course 'c2' with 0 assignments"
    )
    assert course_ops.read(STUDENT, list_courses) == {'courses': ['c2']}


def test_restore_an_assignment_of_a_deleted_course_is_refused(course_ops):
    populate(course_ops)
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    course_ops.write(ADMIN, delete_course, 'c')
    assignment_item = next(i for i in kept(course_ops) if i['kind'] == 'assignment')
    assert refused_restore(course_ops, assignment_item['id']) == (
        "course 'c' does not exist; restore the course first"
    )


# Purging


def purge(ops, older_than) -> list[str]:
    with ops.runtime.writer() as session:
        keys = purge_expired(session, older_than, by='ngshare')
        session.commit()
    return keys


def test_purge_forgets_only_expired_items(course_ops):
    populate(course_ops, 'a', b'a')
    populate(course_ops, 'b', b'b')
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    between = utc_now()
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'b')
    keys = purge(course_ops, between)
    # The blobs of item a: its release, both submissions, the feedback.
    assert sorted(keys) == sorted(
        {
            blob_key(b'questiona'),
            blob_key(b'answer'),
            blob_key(b'o'),
            blob_key(b'well done'),
        }
    )
    assert [i['assignment'] for i in kept(course_ops)] == ['b']
    # Removing what nothing refers to any more: only a's own release file,
    # the rest is held by item b.
    remove_unreferenced(course_ops.runtime.writer, course_ops.store, keys)
    assert course_ops.blob_keys() == {
        blob_key(b'questionb'),
        blob_key(b'answer'),
        blob_key(b'o'),
        blob_key(b'well done'),
    }
    assert purge(course_ops, between) == []


def test_purge_keeps_what_a_live_row_refers_to(course_ops):
    populate(course_ops)
    course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    course_ops.write(
        INSTRUCTOR, release_assignment, 'c', 'again', files_json({'x': b'answer'})
    )
    keys = purge(course_ops, utc_now() + datetime.timedelta(seconds=1))
    remove_unreferenced(course_ops.runtime.writer, course_ops.store, keys)
    assert course_ops.count(DeletedItem) == 0
    assert course_ops.blob_keys() == {blob_key(b'answer')}
    got = course_ops.read(STUDENT, get_assignment, 'c', 'again')
    assert course_ops.tree(got) == {'x': b'answer'}


# Not kept (--deleted-retention-days 0)


def test_without_retention_a_delete_releases_the_blobs(ops):
    unkept = ops.with_flags('--deleted-retention-days', '0')
    unkept.course()
    populate(unkept)
    unkept.write(INSTRUCTOR, delete_assignment, 'c', 'a')
    assert kept(unkept) == []
    # Released for the grace period: stored still, recorded for the sweep.
    assert unkept.blob_keys() == all_blobs()
    assert unkept.released_keys() == all_blobs()


def test_without_retention_or_grace_a_course_delete_removes_its_blobs(ops):
    unkept = ops.with_flags(
        '--deleted-retention-days', '0', '--released-blob-grace', '0'
    )
    unkept.course()
    unkept.course('d', students=[STUDENT])
    populate(unkept)
    unkept.write(INSTRUCTOR, release_assignment, 'd', 'x', files_json({'s': b'answer'}))
    unkept.write(ADMIN, delete_course, 'c')
    assert kept(unkept) == []
    assert unkept.count(Course) == 1
    # Only what course d still refers to is left.
    assert unkept.blob_keys() == {blob_key(b'answer')}
    assert unkept.released_keys() == set()
