"""One bad submission never stops ``nbgrader collect``; nothing lands outside.

Issue 10, point 4 (the plugin's side). A tree that an old server (0.6.0)
accepted, or a row damaged on the server, must not stop the collection of a
class: the plugin skips that one submission, says which student and why,
leaves nothing of it in ``submitted/``, collects the others and exits
non-zero. Today's server refuses such trees by API, so they are made as an
old deployment would have them: a valid tree is submitted through the API,
then its row in the server's SQLite database is changed (``files.filename``,
``files.checksum``). The real ``nbgrader`` command runs against the real
server; the path checks of ``ngshare.exchange.tree`` are tested directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from pathlib import Path, PurePosixPath

import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE, Site, run_cli
from nbgrader.exchange import ExchangeError

from ngshare.exchange.tree import (
    UnsafeTree,
    check_path,
    plan_tree,
    target_inside,
)

pytestmark = pytest.mark.timeout(300)

BAD_TREE_REASON = "'a' is both a file and the folder of 'a/b'"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def entry(path: str, data: bytes = b'x', checksum: str | None = None) -> dict:
    return {
        'path': path,
        'content': base64.b64encode(data).decode('ascii'),
        'checksum': md5(data) if checksum is None else checksum,
    }


# --------------------------------------------------------------------------
# the checks, directly


@pytest.mark.parametrize(
    ('path', 'reason'),
    [
        ('/etc/passwd', 'is absolute'),
        ('../escaped', '".."'),
        ('a/../../escaped', '".."'),
        ('a//b', 'empty'),
        ('a/./b', '"."'),
        ('a/', 'empty'),
        ('.', '"."'),
        ('', 'without a path'),
        (None, 'without a path'),
        ('a\\..\\b', 'backslash'),
        ('a\0b', 'NUL'),
        ('\udcff', 'not valid UTF-8'),
        ('x' * 256, 'longer than 255 bytes'),
        ('é' * 128, 'longer than 255 bytes'),  # 256 bytes in UTF-8
        ('/'.join(['d'] * 2049), 'longer than 4096 bytes'),
    ],
)
def test_check_path_refuses(path, reason):
    with pytest.raises(UnsafeTree) as info:
        check_path(path)
    assert reason in str(info.value)


def test_check_path_accepts_ordinary_paths():
    assert check_path('ps1.ipynb') == PurePosixPath('ps1.ipynb')
    assert check_path('data/in put.csv') == PurePosixPath('data', 'in put.csv')
    assert check_path('x' * 255) == PurePosixPath('x' * 255)
    assert check_path('..a/b..') == PurePosixPath('..a', 'b..')


def test_plan_tree_refuses_prefix_clash_duplicates_and_bad_content():
    for files in (
        [entry('a'), entry('a/b')],
        [entry('a/b'), entry('a')],
        [entry('x/a'), entry('x/a/b/c')],
    ):
        with pytest.raises(UnsafeTree) as info:
            plan_tree(files)
        assert 'is both a file and the folder of' in str(info.value)
    with pytest.raises(UnsafeTree, match='sent twice'):
        plan_tree([entry('a'), entry('a')])
    (damaged,) = plan_tree([entry('a', b'one', checksum=md5(b'two'))])
    with pytest.raises(UnsafeTree, match='does not match its checksum'):
        damaged.decode()
    (undecodable,) = plan_tree([{'path': 'a', 'content': 'abc'}])
    with pytest.raises(UnsafeTree, match='not base64'):
        undecodable.decode()
    (unchecked,) = plan_tree([{'path': 'a', 'content': 'AA=='}])  # 0.6.0-style
    assert unchecked.decode() == b'\0'
    with pytest.raises(UnsafeTree, match='no content'):
        plan_tree([{'path': 'a'}])
    with pytest.raises(UnsafeTree, match='malformed file entry'):
        plan_tree(['a'])
    with pytest.raises(UnsafeTree, match='no list of files'):
        plan_tree(None)
    # what is fine: siblings sharing a prefix of characters, not of folders
    plan = plan_tree([entry('a', b'1'), entry('ab/c', b'2'), entry('a.d/e', b'3')])
    assert [(str(p.path), p.decode()) for p in plan] == [
        ('a', b'1'),
        ('ab/c', b'2'),
        ('a.d/e', b'3'),
    ]


def test_target_inside_follows_links(tmp_path):
    dest, outside = tmp_path / 'dest', tmp_path / 'outside'
    dest.mkdir()
    outside.mkdir()
    assert target_inside(str(dest), PurePosixPath('a', 'b')) == str(dest / 'a' / 'b')
    (dest / 'data').symlink_to(outside)
    with pytest.raises(UnsafeTree, match='outside the destination'):
        target_inside(str(dest), PurePosixPath('data', 'x'))
    (dest / 'inner').symlink_to(dest / 'sub')
    assert target_inside(str(dest), PurePosixPath('inner', 'x'))


# --------------------------------------------------------------------------
# a course whose server holds one tree that cannot be written


def tamper(site: Site, sql: str, *params) -> int:
    """Change the server's SQLite database as an old deployment left it."""
    url = site.server.database_url
    assert url.startswith('sqlite:///'), url
    with sqlite3.connect(url[len('sqlite:///') :]) as db:
        changed = db.execute(sql, params).rowcount
    db.close()
    assert changed >= 1, sql
    return changed


def submit(site: Site, student: str, files: dict[str, bytes]) -> str:
    body = site.api(
        'POST',
        'submission',
        COURSE,
        ASSIGNMENT,
        as_user=student,
        data={'files': json.dumps([entry(p, d) for p, d in files.items()])},
    )
    assert body['success'], body
    return body['timestamp']


def tree_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob('*'))
        if p.is_file()
    }


def leftovers(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob('.ngshare-*'))


GOOD = {
    'lawrence': {'ps1.ipynb': b'{"cells": []}\n', 'data/raw.bin': bytes(range(256))},
    'eric': {'ps1.ipynb': b'eric\r\n\x00\xff', 'notes/deep/er.txt': b''},
}


@pytest.fixture
def course(exchange_site: Site) -> Site:
    """``NBG101`` with ``ps1`` released and a third student, mallory."""
    site = exchange_site
    body = site.api(
        'POST',
        'student',
        COURSE,
        'mallory',
        as_user='kevin',
        data={'first_name': 'M', 'last_name': 'S', 'email': ''},
    )
    assert body['success'], body
    kevin = site['kevin']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    return site


def submit_bad_tree(site: Site) -> str:
    """mallory's ``a`` and ``a/b``: ``c/b`` submitted, then renamed in place."""
    stamp = submit(site, 'mallory', {'a': b'file a', 'c/b': b'file b'})
    tamper(
        site,
        'UPDATE files SET filename = ? WHERE filename = ? AND submission_id ='
        ' (SELECT _id FROM submissions WHERE student_id = ?)',
        'a/b',
        'c/b',
        'mallory',
    )
    listed = site.api(
        'GET',
        'submission',
        COURSE,
        ASSIGNMENT,
        'mallory',
        params={'list_only': 'true'},
    )
    assert sorted(f['path'] for f in listed['files']) == ['a', 'a/b']
    return stamp


def test_nbgrader_collect_skips_the_bad_submission_and_collects_the_rest(course):
    site, kevin = course, course['kevin']
    stamps = {name: submit(site, name, files) for name, files in GOOD.items()}
    bad_stamp = submit_bad_tree(site)
    (kevin.course_dir / 'nbgrader_config.py').write_text(
        f'c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n'
    )
    submitted = kevin.course_dir / 'submitted'

    def collect_and_check() -> None:
        done = run_cli(kevin, 'nbgrader', 'collect', ASSIGNMENT, cwd=kevin.course_dir)
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert 'Traceback' not in output and 'FileExistsError' not in output, output
        # the error as it happens, and the summary that fails the command
        assert (
            f"Skipping the submission of 'mallory' ({bad_stamp}) to 'ps1' of"
            f" course 'NBG101': {BAD_TREE_REASON}"
        ) in done.stderr, output
        assert (
            "Cannot collect 1 of 3 submissions to assignment 'ps1' of course"
            f" 'NBG101'; the others were collected. Skipped: 'mallory'"
            f' ({BAD_TREE_REASON})'
        ) in done.stderr, output
        assert 'nbgrader collect failed' in done.stderr, output
        # nbgrader's layout, byte-exact, for the two others; nothing of mallory
        assert sorted(p.name for p in submitted.iterdir()) == ['eric', 'lawrence']
        for name, files in GOOD.items():
            expected = {**files, 'timestamp.txt': stamps[name].encode()}
            assert tree_of(submitted / name / ASSIGNMENT) == expected, name
        assert leftovers(kevin.course_dir) == []

    collect_and_check()
    # a second run: the same answer, the collected copies untouched
    collect_and_check()
    # once the bad submission is replaced, collect succeeds
    fixed = submit(site, 'mallory', {'a': b'fixed'})
    done = run_cli(kevin, 'nbgrader', 'collect', ASSIGNMENT, cwd=kevin.course_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree_of(submitted / 'mallory' / ASSIGNMENT) == {
        'a': b'fixed',
        'timestamp.txt': fixed.encode(),
    }


def test_collect_skips_damaged_content_and_local_obstacles(course):
    """In-process: a checksum mismatch, a file where nbgrader wants a folder,
    a folder where the plugin writes ``timestamp.txt``; the others go on."""
    site, kevin = course, course['kevin']
    submit(site, 'lawrence', {'ps1.ipynb': b'good'})
    tamper(
        site,
        'UPDATE files SET checksum = ? WHERE submission_id ='
        ' (SELECT _id FROM submissions WHERE student_id = ?)',
        hashlib.md5(b'other').hexdigest(),
        'lawrence',
    )
    eric_stamp = submit(site, 'eric', {'ps1.ipynb': b'eric'})
    submit(site, 'mallory', {'timestamp.txt/x': b'a folder'})
    submitted = kevin.course_dir / 'submitted'
    submitted.mkdir()
    (submitted / 'eric').write_text('not a folder')
    with pytest.raises(ExchangeError) as info:
        kevin.exchange('collect', CourseDirectory__assignment_id=ASSIGNMENT)
    message = str(info.value)
    assert message.startswith(
        "Cannot collect 3 of 3 submissions to assignment 'ps1' of course 'NBG101'"
    ), message
    assert (
        "'lawrence' (the content of 'ps1.ipynb' does not match its checksum (a damaged"
        ' download or a damaged file on the server))'
    ) in message
    assert "'eric' (cannot write " in message
    assert f'{submitted / "eric"}' in message
    assert "'mallory' (cannot write 'timestamp.txt': Is a directory)" in message
    assert sorted(p.name for p in submitted.iterdir()) == ['eric']
    assert (submitted / 'eric').read_text() == 'not a folder'
    assert leftovers(kevin.course_dir) == []

    # once the obstacle is gone, eric is collected; the others still are not
    (submitted / 'eric').unlink()
    with pytest.raises(ExchangeError, match='Cannot collect 2 of 3'):
        kevin.exchange('collect', CourseDirectory__assignment_id=ASSIGNMENT)
    assert tree_of(submitted / 'eric' / ASSIGNMENT) == {
        'ps1.ipynb': b'eric',
        'timestamp.txt': eric_stamp.encode(),
    }


def test_update_keeps_the_previous_copy_when_the_new_one_is_bad(course):
    site, kevin = course, course['kevin']
    first = submit(site, 'mallory', {'a': b'first'})
    kevin.exchange('collect', CourseDirectory__assignment_id=ASSIGNMENT)
    folder = kevin.course_dir / 'submitted' / 'mallory' / ASSIGNMENT
    assert tree_of(folder) == {'a': b'first', 'timestamp.txt': first.encode()}
    submit(site, 'mallory', {'a': b'second', 'c/b': b'b'})
    tamper(site, "UPDATE files SET filename = 'a/b' WHERE filename = 'c/b'")
    with pytest.raises(ExchangeError, match=BAD_TREE_REASON):
        kevin.exchange(
            'collect',
            CourseDirectory__assignment_id=ASSIGNMENT,
            ExchangeCollect__update=True,
        )
    assert tree_of(folder) == {'a': b'first', 'timestamp.txt': first.encode()}
    assert leftovers(kevin.course_dir) == []


# --------------------------------------------------------------------------
# fetch_assignment and fetch_feedback: nothing written outside


def test_fetch_assignment_refuses_a_path_outside(course, tmp_path):
    site, lawrence = course, course['lawrence']
    tamper(
        site,
        "UPDATE files SET filename = '../escaped.txt' WHERE assignment_id IS NOT NULL",
    )
    with pytest.raises(ExchangeError) as info:
        lawrence.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    assert str(info.value) == (
        "Cannot fetch assignment 'ps1' of course 'NBG101': the path"
        ' \'../escaped.txt\' has an empty, "." or ".." component (it would'
        ' leave the destination folder or name another file)'
    )
    assert sorted(p.name for p in lawrence.home.iterdir()) == []
    assert not (lawrence.home.parent / 'escaped.txt').exists()


def test_fetch_replace_missing_never_writes_through_a_link(course, tmp_path):
    kevin, lawrence = course['kevin'], course['lawrence']
    kevin.write_release(**{'data__input.csv': b'1,2\n'})
    kevin.exchange(
        'release_assignment',
        CourseDirectory__assignment_id=ASSIGNMENT,
        ExchangeReleaseAssignment__force=True,
    )
    lawrence.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    work = lawrence.home / ASSIGNMENT
    outside = tmp_path / 'outside'
    outside.mkdir()
    for item in (work / 'data').iterdir():
        item.unlink()
    (work / 'data').rmdir()
    (work / 'data').symlink_to(outside)
    with pytest.raises(ExchangeError, match='outside the destination folder'):
        lawrence.exchange(
            'fetch_assignment',
            CourseDirectory__assignment_id=ASSIGNMENT,
            ExchangeFetchAssignment__replace_missing_files=True,
        )
    assert list(outside.iterdir()) == []


def test_fetch_feedback_refuses_an_absolute_path(course, tmp_path):
    site, kevin, lawrence = course, course['kevin'], course['lawrence']
    stamp = submit(site, 'lawrence', {'ps1.ipynb': b'work'})
    kevin.write_feedback('lawrence', stamp, '<p>ok</p>')
    kevin.exchange('release_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
    target = tmp_path / 'abs' / 'evil.html'
    tamper(
        site,
        'UPDATE files SET filename = ? WHERE feedback_id IS NOT NULL',
        str(target),
    )
    with pytest.raises(ExchangeError) as info:
        lawrence.exchange('fetch_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
    # The message shows the path (cut to 80 characters) and why.
    shown = str(target) if len(str(target)) <= 80 else str(target)[:77] + '...'
    assert f'the path {shown!r} is absolute' in str(info.value)
    assert not target.parent.exists()
    assert not (lawrence.home / ASSIGNMENT).exists()
    assert leftovers(lawrence.home) == []
    assert os.listdir(lawrence.home) in ([], ['.cache-nbgrader'])
