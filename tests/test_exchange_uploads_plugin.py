"""Raw-parts uploads (docs/api.md, *Raw-parts uploads*): the plugin's side.

* The plugin (``ngshare.exchange``), run in-process as nbgrader runs it
  against a real ngshare process: what it sent is read from ``requests``'
  own record of each request (``response.request``), what the server
  stored from the server; every step of a course byte for byte in both
  encodings, the old encoding's bytes unchanged.
* Fallback: the plugin's client against a real ngshare 0.6.0 process, which
  sends no header, uses the old encoding and works.

The server's answers to hand-built raw-parts uploads are in
``test_exchange_uploads.py``; the shared helpers in :mod:`_uploads`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import requests
from _api import files_of
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE
from _ports import free_port
from _servers import REPO_ROOT
from _uploads import ADMIN, CONTENTS, HEADER, MULTIPART, URLENCODED, md5

from ngshare.exchange.client import NgshareClient
from ngshare.exchange.uploads import files_field, multipart_parts, upload_file

pytestmark = pytest.mark.timeout(300)


# -- the plugin --------------------------------------------------------------


def run_step(person, kind: str, **settings) -> list[requests.PreparedRequest]:
    """Run the exchange step ``kind`` as :meth:`_exchange.Person.exchange`
    does; the requests its client sent, as ``requests`` recorded them."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    config = person.config(**settings)
    factory = ExchangeFactory(config=config)
    maker = {
        'release_assignment': factory.ReleaseAssignment,
        'fetch_assignment': factory.FetchAssignment,
        'submit': factory.Submit,
        'collect': factory.Collect,
        'release_feedback': factory.ReleaseFeedback,
        'fetch_feedback': factory.FetchFeedback,
    }[kind]
    step = maker(
        coursedir=CourseDirectory(config=config),
        authenticator=Authenticator(config=config),
    )
    sent: list[requests.PreparedRequest] = []
    with person.acting():
        client = NgshareClient(step.url, retries=0, log=step.log)
        client.session.hooks['response'].append(
            lambda response, *args, **kwargs: sent.append(response.request)
        )
        step._client = client
        step.start()
    return sent


def uploads(sent) -> list[requests.PreparedRequest]:
    return [r for r in sent if r.method == 'POST']


def kind(request: requests.PreparedRequest) -> str:
    return request.headers['Content-Type'].split(';')[0]


def tree_on_disk(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob('*'))
        if p.is_file()
    }


def old_body(files: dict[str, bytes], *fields: tuple[str, str]) -> str:
    """What the plugin always sent: ``fields``, ``files`` (JSON, base64 in
    the order of a sorted walk), ``user``; built here from the API docs."""
    entries = [
        {
            'path': path,
            'content': base64.b64encode(content).decode('ascii'),
            'checksum': md5(content),
        }
        for path, content in files.items()
    ]
    pairs = [*fields[:-1], ('files', json.dumps(entries)), fields[-1]]
    return urllib.parse.urlencode(pairs)  # requests keeps such a body a str


def test_a_course_in_both_encodings(exchange_site):
    site = exchange_site
    kevin, lawrence, eric = site['kevin'], site['lawrence'], site['eric']

    # release without --force: its POST is the first request, so the old
    # encoding, byte for byte as before
    release = kevin.course_dir / 'release' / ASSIGNMENT
    for path, content in CONTENTS.items():
        (release / path).parent.mkdir(parents=True, exist_ok=True)
        (release / path).write_bytes(content)
    sent = run_step(
        kevin, 'release_assignment', CourseDirectory__assignment_id=ASSIGNMENT
    )
    (post,) = uploads(sent)
    assert kind(post) == URLENCODED
    # os.walk's order: the root's files, then each folder's, folders sorted
    in_walk_order = {
        p: CONTENTS[p]
        for p in ['ps1.ipynb', 'data/bytes.bin', 'data/empty.txt', 'données/zoë.txt']
    }
    assert post.body == old_body(in_walk_order, ('user', 'kevin'))
    assert files_of(site.api('GET', 'assignment', COURSE, ASSIGNMENT)) == CONTENTS

    # release --force: after the DELETE's answer, raw parts
    (release / 'data' / 'bytes.bin').write_bytes(bytes(range(255, -1, -1)) * 8)
    expected = tree_on_disk(release)
    sent = run_step(
        kevin,
        'release_assignment',
        CourseDirectory__assignment_id=ASSIGNMENT,
        ExchangeReleaseAssignment__force=True,
    )
    assert [r.method for r in sent] == ['DELETE', 'POST']
    (post,) = uploads(sent)
    assert kind(post) == MULTIPART
    assert expected['data/bytes.bin'] in post.body  # raw, not base64
    assert files_of(site.api('GET', 'assignment', COURSE, ASSIGNMENT)) == expected

    # fetch, then submit (after its GET: raw parts)
    for student in (lawrence, eric):
        run_step(student, 'fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
        assert tree_on_disk(student.home / ASSIGNMENT) == expected
        work = student.home / ASSIGNMENT
        (work / 'answer.bin').write_bytes(os.urandom(300 * 1024))
        submitted = tree_on_disk(work)
        sent = run_step(student, 'submit', CourseDirectory__assignment_id=ASSIGNMENT)
        assert [r.method for r in sent] == ['GET', 'POST']
        (post,) = uploads(sent)
        assert kind(post) == MULTIPART
        assert submitted['answer.bin'] in post.body
        (stamp,) = [
            s['timestamp']
            for s in site.api('GET', 'submissions', COURSE, ASSIGNMENT, student.name)[
                'submissions'
            ]
        ]
        answer = site.api(
            'GET',
            'submission',
            COURSE,
            ASSIGNMENT,
            student.name,
            params={'timestamp': stamp},
        )
        assert files_of(answer) == submitted

    # collect: what each submitted, byte for byte
    run_step(kevin, 'collect', CourseDirectory__assignment_id=ASSIGNMENT)
    for student in (lawrence, eric):
        collected = tree_on_disk(
            kevin.course_dir / 'submitted' / student.name / ASSIGNMENT
        )
        assert collected.pop('timestamp.txt')
        assert collected == tree_on_disk(student.home / ASSIGNMENT)

    # feedback: the first upload of the step in the old encoding, the next
    # (after the first answer) in raw parts; both fetched byte for byte
    pages = {}
    for student in (eric, lawrence):
        stamp = (
            kevin.course_dir / 'submitted' / student.name / ASSIGNMENT / 'timestamp.txt'
        ).read_text()
        html = f'<p>for {student.name}</p>\r\n--\r\n' + 'é' * 1000
        kevin.write_feedback(student.name, stamp, html)
        pages[student.name] = html.encode()
    sent = run_step(
        kevin, 'release_feedback', CourseDirectory__assignment_id=ASSIGNMENT
    )
    assert [kind(r) for r in uploads(sent)] == [URLENCODED, MULTIPART]
    for student in (lawrence, eric):
        run_step(student, 'fetch_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
        (page,) = (student.home / ASSIGNMENT / 'feedback').rglob('*.html')
        assert page.read_bytes() == pages[student.name]


# -- fallback: ngshare 0.6.0 -------------------------------------------------

VENV_060 = Path(os.environ.get('NGSHARE_060_VENV') or REPO_ROOT / '.venv-ngshare-0.6.0')
LAUNCHER_060 = REPO_ROOT / 'benchmarks' / 'launch_060.py'


@pytest.fixture
def ngshare_060(tmp_path):
    """ngshare 0.6.0, stand-alone (``user`` names the caller), as a process
    of its own venv; stopped by its PID at the end."""
    python = VENV_060 / 'bin' / 'python'
    if not python.exists():
        pytest.skip(f'no ngshare 0.6.0 venv at {VENV_060} (testing/run-tests makes it)')
    home = tmp_path / '060'
    home.mkdir()
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(('JUPYTERHUB_', 'NGSHARE_', 'PYTHON', 'VIRTUAL_ENV'))
    }
    log = open(home / 'log.txt', 'wb')  # noqa: SIM115 (closed below)
    process = subprocess.Popen(  # noqa: S603 (our own argv)
        [
            str(python),
            str(LAUNCHER_060),
            '--vngshare',
            '--host',
            '127.0.0.1',
            '--port',
            str(port),
            '--admins',
            ADMIN,
            '--database',
            f'sqlite:///{home / "ngshare.db"}',
            '--storage',
            str(home / 'files'),
        ],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f'http://127.0.0.1:{port}/api'
    try:
        for _ in range(300):  # 30 s
            if process.poll() is not None:
                break
            try:
                requests.get(f'http://127.0.0.1:{port}/healthz', timeout=1)
                break
            except requests.ConnectionError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(0.1)
        assert process.poll() is None, (home / 'log.txt').read_text('utf-8', 'replace')
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def files_060(answer: dict) -> dict[str, bytes]:
    """0.6.0's answer's files (its base64 has line breaks), checksums checked."""
    found = {}
    for entry in answer['files']:
        content = base64.b64decode(''.join(entry['content'].split()), validate=True)
        assert md5(content) == entry['checksum'], entry['path']
        found[entry['path']] = content
    return found


def recording_client(url: str, user: str) -> tuple[NgshareClient, list]:
    client = NgshareClient(url, token='', user=user, retries=0)
    sent: list[requests.PreparedRequest] = []
    client.session.hooks['response'].append(
        lambda response, *args, **kwargs: sent.append(response.request)
    )
    return client, sent


def test_the_plugin_falls_back_to_the_old_encoding_with_060(ngshare_060):
    root, _ = recording_client(ngshare_060, ADMIN)
    root.post('course', COURSE, instructors=json.dumps(['kevin']))
    kevin, sent = recording_client(ngshare_060, 'kevin')
    kevin.post('student', COURSE, 'lawrence', first_name='L', last_name='L', email='')
    assert kevin.upload_formats == frozenset()
    files = [upload_file(p, c) for p, c in CONTENTS.items()]
    kevin.upload('POST', ('assignment', COURSE, ASSIGNMENT), files)
    assert kind(sent[-1]) == URLENCODED
    assert sent[-1].body == urllib.parse.urlencode(
        [('files', files_field(files)), ('user', 'kevin')]
    )
    lawrence, sent = recording_client(ngshare_060, 'lawrence')
    answer = lawrence.get('assignment', COURSE, ASSIGNMENT, user='lawrence')
    assert HEADER not in sent[-1].headers and lawrence.upload_formats == frozenset()
    assert files_060(answer) == CONTENTS
    submitted = {'ps1.ipynb': b'{"mine": 1}', 'x.bin': os.urandom(5000)}
    stamp = lawrence.upload(
        'POST',
        ('submission', COURSE, ASSIGNMENT),
        [upload_file(p, c) for p, c in submitted.items()],
    )['timestamp']
    assert kind(sent[-1]) == URLENCODED
    answer = kevin.get(
        'submission', COURSE, ASSIGNMENT, 'lawrence', timestamp=stamp, user='kevin'
    )
    assert files_060(answer) == submitted


def test_the_client_follows_the_latest_answer(exchange_site, ngshare_060):
    """Raw parts only while the latest answer of the server offered them:
    not before any answer, not after an answer without the header."""
    client, sent = recording_client(exchange_site.url, 'kevin')
    files = [upload_file('a.txt', b'a')]
    assert client.upload_formats == frozenset()
    client.upload('POST', ('assignment', COURSE, 'a1'), files)
    assert kind(sent[-1]) == URLENCODED
    assert client.upload_formats == {'multipart'}
    client.upload('POST', ('assignment', COURSE, 'a2'), files)
    assert kind(sent[-1]) == MULTIPART
    # the same client, its server now answering without the header (0.6.0)
    client.url = ngshare_060
    client.get('courses', user=ADMIN)
    assert client.upload_formats == frozenset()
    with pytest.raises(Exception, match='Course not found'):
        client.upload('POST', ('assignment', COURSE, 'a3'), files)
    assert kind(sent[-1]) == URLENCODED
    stored = exchange_site.api('GET', 'assignment', COURSE, 'a2')
    assert files_of(stored) == {'a.txt': b'a'}


def test_the_two_encodings_carry_the_same_tree():
    files = [upload_file(p, c) for p, c in CONTENTS.items()]
    old = json.loads(files_field(files))
    parts = multipart_parts(files)
    (name, (filename, text, content_type)), *file_parts = parts
    assert (name, filename, content_type) == ('manifest', None, 'application/json')
    assert json.loads(text) == [
        {'path': e['path'], 'checksum': e['checksum']} for e in old
    ]
    assert [base64.b64decode(e['content']) for e in old] == [
        part[1][1] for part in file_parts
    ]
    assert [(n, p[0], p[2]) for n, p in file_parts] == [
        ('file', str(i), 'application/octet-stream') for i in range(len(files))
    ]
    assert [e['checksum'] for e in old] == [md5(c) for c in CONTENTS.values()]
