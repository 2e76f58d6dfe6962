"""Assignments, called as operations (no HTTP): release, list, get, delete;
the documented refusals of an uploaded tree; who may do what; and the
runner's transaction discipline (a write that fails leaves no row and no
blob behind, a lost race is retried and then answered 409).

Contents are compared with what the test uploaded (bytes read back from the
store, md5 computed here), never with an earlier answer of ngshare."""

from __future__ import annotations

import base64
import json

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

from ngshare.blobs.store import blob_key
from ngshare.database.models import Assignment, Course, File
from ngshare.errors import ApiError
from ngshare.operations.assignments import (
    delete_assignment,
    get_assignment,
    list_assignments,
    release_assignment,
)
from ngshare.operations.courses import create_course
from ngshare.operations.runner import WRITE_ATTEMPTS

CONFLICT = 'Request conflicts with a concurrent change'

DENIED = (403, 'Permission denied')
TREE = {'a.ipynb': b'{"cells": []}', 'data/x.csv': b'1,2\n3,4\n', 'empty': b''}


def release(ops, name='a', files=TREE, who=INSTRUCTOR):
    return ops.write(who, release_assignment, 'c', name, files_json(files))


def test_release_then_get_gives_back_the_uploaded_bytes(course_ops):
    assert release(course_ops) == {}
    answer = course_ops.read(STUDENT, get_assignment, 'c', 'a')
    assert [(f.path, f.checksum) for f in answer['files']] == expected_files(TREE)
    assert course_ops.tree(answer) == TREE
    assert course_ops.blob_keys() == {blob_key(content) for content in TREE.values()}


def test_identical_contents_are_stored_once(course_ops):
    release(course_ops, 'a', {'x': b'same', 'y': b'same'})
    release(course_ops, 'b', {'z': b'same'})
    assert course_ops.blob_keys() == {blob_key(b'same')}
    assert course_ops.count(File) == 3
    answer = course_ops.read(INSTRUCTOR, get_assignment, 'c', 'b')
    assert course_ops.tree(answer) == {'z': b'same'}


def test_list_assignments_in_release_order(course_ops):
    for name in ('zz', 'aa', 'mm'):
        release(course_ops, name)
    answer = course_ops.read(OTHER_STUDENT, list_assignments, 'c')
    assert answer['assignments'] == ['zz', 'aa', 'mm']
    assert list(answer['deadlines']) == ['zz', 'aa', 'mm']


def test_release_refused_twice(course_ops):
    release(course_ops, files={'one': b'1'})
    answer = course_ops.answers(
        INSTRUCTOR, release_assignment, 'c', 'a', files_json({'two': b'2'}), write=True
    )
    assert answer == (409, 'Assignment already exists')
    # The first release stands; the refused upload stored nothing.
    got = course_ops.read(INSTRUCTOR, get_assignment, 'c', 'a')
    assert course_ops.tree(got) == {'one': b'1'}
    assert course_ops.blob_keys() == {blob_key(b'1')}


@pytest.mark.parametrize(
    ('who', 'expected'),
    [(ADMIN, 200), (INSTRUCTOR, 200), (STUDENT, 403), (OUTSIDER, 403)],
)
def test_release_permissions(course_ops, who, expected):
    status, _ = course_ops.answers(
        who, release_assignment, 'c', 'a', files_json(TREE), write=True
    )
    assert status == expected
    assert course_ops.count(Assignment) == (1 if expected == 200 else 0)
    assert bool(course_ops.blob_keys()) == (expected == 200)


@pytest.mark.parametrize('who', ROLES)
def test_list_and_get_permissions(course_ops, who):
    release(course_ops)
    expected = 403 if who == OUTSIDER else 200
    assert course_ops.answers(who, list_assignments, 'c')[0] == expected
    assert course_ops.answers(who, get_assignment, 'c', 'a')[0] == expected


def test_lookups_not_found(course_ops):
    assert course_ops.answers(STUDENT, get_assignment, 'c', 'nope') == (
        404,
        'Assignment not found',
    )
    assert course_ops.answers(ADMIN, list_assignments, 'nope') == (
        404,
        'Course not found',
    )
    # A name no row can hold is simply not found (no query is made).
    assert course_ops.answers(STUDENT, get_assignment, 'c', 'a\x00') == (
        404,
        'Assignment not found',
    )
    answer = course_ops.answers(
        INSTRUCTOR, release_assignment, 'nope', 'a', files_json(TREE), write=True
    )
    assert answer == (404, 'Course not found')


def _entry(path='f', content=b'x', **extra) -> dict:
    return {'path': path, 'content': base64.b64encode(content).decode(), **extra}


@pytest.mark.parametrize(
    ('files', 'message'),
    [
        (None, 'Please supply files'),
        ('not json', 'Files cannot be JSON decoded'),
        ('{}', 'Files cannot be JSON decoded'),
        (json.dumps([{'path': 'f'}]), 'Files cannot be JSON decoded'),
        (json.dumps([{'path': 1, 'content': ''}]), 'Files cannot be JSON decoded'),
        (json.dumps([_entry('../up')]), 'Illegal path'),
        (json.dumps([_entry('/abs')]), 'Illegal path'),
        (json.dumps([_entry('a\\b')]), 'Illegal path'),
        (json.dumps([_entry('a'), _entry('a/b')]), 'Illegal path'),
        (json.dumps([_entry('a'), _entry('a')]), 'Illegal path'),
        (
            json.dumps([{'path': 'f', 'content': '!!!'}]),
            'Content cannot be base64 decoded',
        ),
        (json.dumps([_entry(checksum='0' * 32)]), 'Checksum mismatch'),
    ],
)
def test_release_refuses_malformed_trees_and_stores_nothing(course_ops, files, message):
    answer = course_ops.answers(
        INSTRUCTOR, release_assignment, 'c', 'a', files, write=True
    )
    assert answer == (400, message)
    assert course_ops.count(Assignment) == 0
    assert course_ops.blob_keys() == set()


def test_release_checksum_given_right_is_accepted(course_ops):
    good = json.dumps([_entry(checksum='9DD4E461268C8034F5C8564E155C67A6')])
    assert course_ops.write(INSTRUCTOR, release_assignment, 'c', 'a', good) == {}


def test_release_refuses_a_file_over_max_file_size(ops):
    small = ops.with_flags('--max-file-size', '4')
    small.course()
    answer = small.answers(
        INSTRUCTOR,
        release_assignment,
        'c',
        'a',
        files_json({'ok': b'1234', 'big': b'12345'}),
        write=True,
    )
    assert answer == (413, 'File too large')
    assert small.blob_keys() == set()
    assert release(small, files={'ok': b'1234'}) == {}


def test_release_illegal_new_name(course_ops):
    answer = course_ops.answers(
        INSTRUCTOR, release_assignment, 'c', 'a\tb', files_json(TREE), write=True
    )
    assert answer == (400, 'Illegal name')
    assert course_ops.blob_keys() == set()


# Delete


@pytest.mark.parametrize(
    ('who', 'expected'),
    [(ADMIN, 200), (INSTRUCTOR, 200), (STUDENT, 403), (OUTSIDER, 403)],
)
def test_delete_permissions(course_ops, who, expected):
    release(course_ops)
    assert course_ops.answers(who, delete_assignment, 'c', 'a', write=True)[0] == (
        expected
    )
    listed = course_ops.read(ADMIN, list_assignments, 'c')['assignments']
    assert listed == ([] if expected == 200 else ['a'])


def test_delete_then_release_again(course_ops):
    release(course_ops, files={'old': b'old'})
    assert course_ops.write(INSTRUCTOR, delete_assignment, 'c', 'a') == {}
    assert course_ops.answers(INSTRUCTOR, delete_assignment, 'c', 'a', write=True) == (
        404,
        'Assignment not found',
    )
    assert course_ops.answers(STUDENT, get_assignment, 'c', 'a') == (
        404,
        'Assignment not found',
    )
    release(course_ops, files={'new': b'new'})
    got = course_ops.read(STUDENT, get_assignment, 'c', 'a')
    assert course_ops.tree(got) == {'new': b'new'}


# The runner: one transaction per operation


class Boom(Exception):
    pass


def test_a_failed_write_leaves_no_row_and_no_blob(course_ops):
    """An operation that raises after storing its files: the transaction
    rolls back and the blobs it created are removed again."""

    def release_then_fail(ctx):
        release_assignment(ctx, 'c', 'a', files_json(TREE))
        assert ctx.created_blobs  # it did store them
        raise Boom

    with pytest.raises(Boom):
        course_ops.write(INSTRUCTOR, release_then_fail)
    assert course_ops.count(Assignment) == 0
    assert course_ops.count(File) == 0
    assert course_ops.blob_keys() == set()


def test_a_failed_write_keeps_blobs_that_committed_rows_refer_to(course_ops):
    release(course_ops, 'kept', {'k': b'shared'})

    def release_then_refuse(ctx):
        release_assignment(ctx, 'c', 'a', files_json({'s': b'shared', 'n': b'new'}))
        raise ApiError(400, 'refused late')

    err = course_ops.refused(INSTRUCTOR, release_then_refuse, write=True)
    assert (err.status, err.message) == (400, 'refused late')
    assert course_ops.blob_keys() == {blob_key(b'shared')}
    got = course_ops.read(STUDENT, get_assignment, 'c', 'kept')
    assert course_ops.tree(got) == {'k': b'shared'}


def test_a_unit_rolled_back_by_hand_is_cleaned_like_the_runner(course_ops):
    """The raw Context of ``ops.unit``: the same discipline as the runner."""
    with pytest.raises(Boom), course_ops.unit(INSTRUCTOR) as ctx:
        release_assignment(ctx, 'c', 'a', files_json({'f': b'unit'}))
        assert course_ops.store.exists(blob_key(b'unit'))
        raise Boom
    assert course_ops.blob_keys() == set()
    assert course_ops.count(Assignment) == 0


def test_a_unit_committed_by_hand_stays(course_ops):
    with course_ops.unit(INSTRUCTOR) as ctx:
        release_assignment(ctx, 'c', 'a', files_json({'f': b'unit'}))
        ctx.session.commit()
    got = course_ops.read(STUDENT, get_assignment, 'c', 'a')
    assert course_ops.tree(got) == {'f': b'unit'}


def test_a_write_that_always_conflicts_is_tried_again_then_answered_409(ops):
    """A unique-constraint failure is a lost race: retried, then 409; each
    attempt's blobs are removed."""
    attempts = []

    def duplicate_course(ctx):
        attempts.append(1)
        create_course(ctx, 'c', None)
        release_assignment(ctx, 'c', 'a', files_json({'f': b'attempt'}))
        ctx.session.add(Course(id='c'))  # the same name again
        ctx.session.flush()

    err = ops.refused(ADMIN, duplicate_course, write=True)
    assert (err.status, err.message) == (
        409,
        'Request conflicts with a concurrent change',
    )
    assert len(attempts) == WRITE_ATTEMPTS
    assert ops.count(Course) == 0
    assert ops.blob_keys() == set()


def test_a_read_is_not_retried(ops):
    attempts = []

    def conflicting_read(ctx):
        attempts.append(1)
        ctx.session.add(Course(id='x'))
        ctx.session.add(Course(id='x'))
        ctx.session.flush()

    err = ops.refused(ADMIN, conflicting_read)
    assert (err.status, err.message) == (409, CONFLICT)
    assert len(attempts) == 1
