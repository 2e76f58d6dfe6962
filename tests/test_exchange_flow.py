"""ngshare's nbgrader exchange plugin, in-process, against a real ngshare.

A course goes through every exchange step (release, list, fetch, submit,
list --cached/--inbound, collect, release_feedback, fetch_feedback), on a
stand-alone ngshare and on one under the Hub stand-in, and every step's
files and return value are checked against nbgrader's own exchange layout.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE

pytestmark = pytest.mark.timeout(300)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(params=['stand-alone', 'hub'])
def site(request):
    name = 'exchange_site' if request.param == 'stand-alone' else 'exchange_site_hub'
    return request.getfixturevalue(name)


def test_course_through_the_exchange(site):
    kevin, lawrence, eric = site['kevin'], site['lawrence'], site['eric']

    # release: the files of release/ps1, without what nbgrader ignores
    release = kevin.write_release(
        **{'data__input.csv': b'a,b\n1,2\n', '__pycache__/x.pyc': b'junk'}
    )
    (release / '.ipynb_checkpoints').mkdir()
    (release / '.ipynb_checkpoints' / 'ps1-checkpoint.ipynb').write_text('{}')
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    body = site.api(
        'GET', 'assignment', COURSE, ASSIGNMENT, params={'list_only': 'true'}
    )
    assert sorted(f['path'] for f in body['files']) == ['data/input.csv', 'ps1.ipynb']

    # list (released): the structure of nbgrader's exchange
    listed = lawrence.exchange('list', CourseDirectory__course_id='*')
    assert listed == [
        {
            'course_id': COURSE,
            'assignment_id': ASSIGNMENT,
            'status': 'released',
            'path': f'{site.url}/assignment/{COURSE}/{ASSIGNMENT}',
            'notebooks': [{'notebook_id': 'ps1', 'path': 'ps1.ipynb'}],
            # No due date: late submissions accepted, none made yet.
            'due_date': None,
            'late_policy': 'accept',
            'cutoff': None,
            'submissions': [],
        }
    ]

    # fetch into <home>/ps1, as nbgrader's exchange does
    for student in (lawrence, eric):
        student.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
        fetched = student.home / ASSIGNMENT
        assert sorted(
            p.relative_to(fetched).as_posix() for p in fetched.rglob('*') if p.is_file()
        ) == ['data/input.csv', 'ps1.ipynb']
        assert (fetched / 'data' / 'input.csv').read_bytes() == b'a,b\n1,2\n'
    listed = lawrence.exchange('list', CourseDirectory__course_id='*')
    assert listed[0]['status'] == 'fetched'
    assert listed[0]['path'] == str(lawrence.home / ASSIGNMENT)
    assert listed[0]['notebooks'] == [
        {'notebook_id': 'ps1', 'path': str(lawrence.home / ASSIGNMENT / 'ps1.ipynb')}
    ]

    # submit twice: server timestamps, cached copies with timestamp.txt
    work = lawrence.home / ASSIGNMENT
    (work / 'notes.txt').write_text('first')
    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    (work / 'notes.txt').write_text('second')
    (work / 'feedback').mkdir()  # ignored, as by nbgrader
    (work / 'feedback' / 'old.html').write_text('x')
    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    eric.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    stamps = [
        s['timestamp']
        for s in site.api('GET', 'submissions', COURSE, ASSIGNMENT, 'lawrence')[
            'submissions'
        ]
    ]
    assert len(stamps) == 2 and stamps[0] < stamps[1]
    cached = lawrence.cached()
    assert sorted(cached) == stamps
    for stamp in stamps:
        assert (cached[stamp] / 'timestamp.txt').read_text() == stamp
        assert not (cached[stamp] / 'feedback').exists()
    assert (cached[stamps[0]] / 'notes.txt').read_text() == 'first'
    latest = site.api(
        'GET',
        'submission',
        COURSE,
        ASSIGNMENT,
        'lawrence',
        params={'timestamp': stamps[1], 'list_only': 'true'},
    )
    assert {f['path'] for f in latest['files']} == {
        'ps1.ipynb',
        'data/input.csv',
        'notes.txt',
    }

    # list --cached before any feedback
    listed = lawrence.exchange(
        'list', CourseDirectory__course_id='*', ExchangeList__cached=True
    )
    assert [a['student_id'] for a in listed] == ['lawrence']
    subs = listed[0]['submissions']
    assert [s['timestamp'] for s in subs] == stamps
    for sub in subs:
        assert sub['status'] == 'submitted'
        assert sub['has_exchange_feedback'] is False
        assert sub['has_local_feedback'] is False
        assert sub['feedback_updated'] is False
        assert sub['local_feedback_path'] is None
        assert [n['notebook_id'] for n in sub['notebooks']] == ['ps1']

    # list --inbound (instructor): every submission of every student
    listed = kevin.exchange('list', ExchangeList__inbound=True)
    assert [(a['student_id'], len(a['submissions'])) for a in listed] == [
        ('eric', 1),
        ('lawrence', 2),
    ]

    # collect: the latest of each student, with timestamp.txt
    kevin.exchange('collect', CourseDirectory__assignment_id=ASSIGNMENT)
    submitted = kevin.course_dir / 'submitted'
    assert sorted(p.name for p in submitted.iterdir()) == ['eric', 'lawrence']
    folder = submitted / 'lawrence' / ASSIGNMENT
    assert (folder / 'timestamp.txt').read_text() == stamps[1]
    assert (folder / 'notes.txt').read_text() == 'second'

    # a newer submission is collected only with --update
    (work / 'notes.txt').write_text('third')
    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    kevin.exchange('collect', CourseDirectory__assignment_id=ASSIGNMENT)
    assert (folder / 'notes.txt').read_text() == 'second'
    kevin.exchange(
        'collect',
        CourseDirectory__assignment_id=ASSIGNMENT,
        ExchangeCollect__update=True,
    )
    assert (folder / 'notes.txt').read_text() == 'third'
    stamps = sorted(lawrence.cached())
    assert (folder / 'timestamp.txt').read_text() == stamps[-1]

    # release_feedback: feedback/<student>/<assignment>/*.html at the
    # timestamp of timestamp.txt
    kevin.write_feedback('lawrence', stamps[-1], '<p>good</p>')
    eric_stamp = (submitted / 'eric' / ASSIGNMENT / 'timestamp.txt').read_text()
    kevin.write_feedback('eric', eric_stamp, '<p>ok</p>')
    kevin.exchange('release_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
    body = site.api(
        'GET',
        'feedback',
        COURSE,
        ASSIGNMENT,
        'lawrence',
        params={'timestamp': stamps[-1], 'list_only': 'true'},
    )
    assert body['files'] == [{'path': 'ps1.html', 'checksum': md5(b'<p>good</p>')}]
    listed = kevin.exchange('list', ExchangeList__inbound=True)
    by_stamp = {s['timestamp']: s for a in listed for s in a['submissions']}
    assert by_stamp[stamps[-1]]['has_exchange_feedback'] is True
    assert by_stamp[stamps[0]]['has_exchange_feedback'] is False

    # list --cached: ready to be fetched
    listed = lawrence.exchange(
        'list', CourseDirectory__course_id='*', ExchangeList__cached=True
    )
    last = listed[0]['submissions'][-1]
    assert last['timestamp'] == stamps[-1]
    assert (last['has_exchange_feedback'], last['has_local_feedback']) == (True, False)

    # fetch_feedback: <assignment>/feedback/<timestamp>/ps1.html, only where
    # there is feedback
    lawrence.exchange('fetch_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
    feedback = lawrence.home / ASSIGNMENT / 'feedback'
    found = sorted(p.relative_to(feedback).as_posix() for p in feedback.rglob('*.html'))
    assert found == [f'{stamps[-1]}/ps1.html', 'old.html'], found
    assert (feedback / stamps[-1] / 'ps1.html').read_text() == '<p>good</p>'
    listed = lawrence.exchange(
        'list', CourseDirectory__course_id='*', ExchangeList__cached=True
    )
    last = listed[0]['submissions'][-1]
    assert last['has_local_feedback'] is True
    assert last['feedback_updated'] is False
    assert last['local_feedback_path'] == str(feedback / stamps[-1])
    assert last['notebooks'][0]['local_feedback_path'] == str(
        feedback / stamps[-1] / 'ps1.html'
    )

    # changed feedback shows as updated until fetched again
    kevin.write_feedback('lawrence', stamps[-1], '<p>better</p>')
    kevin.exchange(
        'release_feedback',
        CourseDirectory__assignment_id=ASSIGNMENT,
        CourseDirectory__student_id='lawrence',
    )
    listed = lawrence.exchange(
        'list', CourseDirectory__course_id='*', ExchangeList__cached=True
    )
    assert listed[0]['submissions'][-1]['feedback_updated'] is True
    lawrence.exchange('fetch_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
    assert (feedback / stamps[-1] / 'ps1.html').read_text() == '<p>better</p>'
    listed = lawrence.exchange(
        'list', CourseDirectory__course_id='*', ExchangeList__cached=True
    )
    assert listed[0]['submissions'][-1]['feedback_updated'] is False

    # feedback is found even without the local cache (a new server)
    eric_cache = eric.cache / COURSE
    for path in eric_cache.iterdir():
        for item in sorted(path.rglob('*'), reverse=True):
            item.unlink() if item.is_file() else item.rmdir()
        path.rmdir()
    eric.exchange('fetch_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
    assert (
        eric.home / ASSIGNMENT / 'feedback' / eric_stamp / 'ps1.html'
    ).read_text() == '<p>ok</p>'


def test_list_remove_cached_and_released(exchange_site):
    site = exchange_site
    kevin, lawrence = site['kevin'], site['lawrence']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    lawrence.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    assert len(lawrence.cached()) == 1

    # --cached --remove deletes the local copies only
    removed = lawrence.exchange(
        'list',
        CourseDirectory__course_id='*',
        ExchangeList__cached=True,
        ExchangeList__remove=True,
    )
    assert removed[0]['submissions'][0]['status'] == 'removed'
    assert lawrence.cached() == {}
    assert len(site.api('GET', 'submissions', COURSE, ASSIGNMENT)['submissions']) == 1

    # --remove (outbound) unreleases the assignment
    removed = kevin.exchange(
        'list', CourseDirectory__assignment_id=ASSIGNMENT, ExchangeList__remove=True
    )
    assert [(r['assignment_id'], r['status']) for r in removed] == [
        (ASSIGNMENT, 'removed')
    ]
    assert site.api('GET', 'assignments', COURSE)['assignments'] == []


def test_fetch_layouts_and_missing_files(exchange_site):
    site = exchange_site
    kevin, lawrence = site['kevin'], site['lawrence']
    kevin.write_release(**{'extra.txt': b'extra'})
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)

    # path_includes_course: <course>/<assignment>
    lawrence.exchange(
        'fetch_assignment',
        CourseDirectory__assignment_id=ASSIGNMENT,
        Exchange__path_includes_course=True,
    )
    assert (lawrence.home / COURSE / ASSIGNMENT / 'ps1.ipynb').is_file()
    listed = lawrence.exchange(
        'list', CourseDirectory__course_id='*', Exchange__path_includes_course=True
    )
    assert listed[0]['status'] == 'fetched'

    # replace_missing_files brings back deleted files only
    lawrence.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    work = lawrence.home / ASSIGNMENT
    (work / 'ps1.ipynb').write_text('my work')
    (work / 'extra.txt').unlink()
    lawrence.exchange(
        'fetch_assignment',
        CourseDirectory__assignment_id=ASSIGNMENT,
        ExchangeFetchAssignment__replace_missing_files=True,
    )
    assert (work / 'ps1.ipynb').read_text() == 'my work'
    assert (work / 'extra.txt').read_bytes() == b'extra'


def test_release_honours_ignore_include_and_max_file_size(exchange_site):
    site = exchange_site
    kevin = site['kevin']
    kevin.write_release(
        **{
            'keep.csv': b'1',
            'skip.log': b'2',
            'big.csv': b'x' * 3000,
            'sub__deep.csv': b'3',
            'scratch__a.csv': b'4',
        }
    )
    kevin.exchange(
        'release_assignment',
        CourseDirectory__assignment_id=ASSIGNMENT,
        CourseDirectory__ignore=['scratch', '*.log'],
        CourseDirectory__include=['*.ipynb', '*.csv'],
        CourseDirectory__max_file_size=2,  # kB: big.csv (3000 bytes) is left out
    )
    body = site.api(
        'GET', 'assignment', COURSE, ASSIGNMENT, params={'list_only': 'true'}
    )
    assert sorted(f['path'] for f in body['files']) == [
        'keep.csv',
        'ps1.ipynb',
        'sub/deep.csv',
    ]


def test_release_force_replaces_the_assignment(exchange_site):
    site = exchange_site
    kevin = site['kevin']
    release = kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    (release / 'more.txt').write_text('more')
    kevin.exchange(
        'release_assignment',
        CourseDirectory__assignment_id=ASSIGNMENT,
        ExchangeReleaseAssignment__force=True,
    )
    body = site.api(
        'GET', 'assignment', COURSE, ASSIGNMENT, params={'list_only': 'true'}
    )
    assert sorted(f['path'] for f in body['files']) == ['more.txt', 'ps1.ipynb']


def test_list_with_several_courses_and_course_star(exchange_site):
    site = exchange_site
    assert site.api(
        'POST', 'course', 'OTHER', data={'instructors': json.dumps(['kevin'])}
    )['success']
    assert site.api(
        'POST',
        'student',
        'OTHER',
        'lawrence',
        as_user='kevin',
        data={'first_name': '', 'last_name': '', 'email': ''},
    )['success']
    kevin = site['kevin']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    kevin.exchange(
        'release_assignment',
        CourseDirectory__assignment_id=ASSIGNMENT,
        CourseDirectory__course_id='OTHER',
    )
    listed = site['lawrence'].exchange('list', CourseDirectory__course_id='*')
    assert [(a['course_id'], a['assignment_id']) for a in listed] == [
        (COURSE, ASSIGNMENT),
        ('OTHER', ASSIGNMENT),
    ]
    # a student of neither sees nothing, and that is no failure
    assert site['oscar'].exchange('list', CourseDirectory__course_id='*') == []


def test_fetch_beside_a_folder_of_the_same_name(exchange_site, tmp_path, monkeypatch):
    # ngshare_exchange 0.5.3 looked for data/ in the working directory.
    site = exchange_site
    kevin, lawrence = site['kevin'], site['lawrence']
    kevin.write_release(**{'data__input.csv': b'1\n'})
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    (lawrence.home / 'data').mkdir()
    monkeypatch.chdir(lawrence.home)
    lawrence.exchange(
        'fetch_assignment',
        CourseDirectory__assignment_id=ASSIGNMENT,
        Exchange__assignment_dir='.',
    )
    assert (lawrence.home / ASSIGNMENT / 'data' / 'input.csv').read_bytes() == b'1\n'
    assert list((lawrence.home / 'data').iterdir()) == []
