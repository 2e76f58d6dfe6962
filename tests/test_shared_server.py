"""The shared in-process server (:mod:`_shared_server`) is the real service,
and a test that uses it sees nothing an earlier test left."""

from __future__ import annotations

import json
import time

import pytest
from _api import ok, tree

pytestmark = pytest.mark.both_databases

ADMIN = 'root'
DUMP = 'initialize-Data6ase'


def fill(server) -> None:
    """A course with a roster, a release, a submission and feedback."""
    ok(server.post(('course', 'c'), user=ADMIN, data={'instructors': '["kevin"]'}))
    person = {'first_name': 'L', 'last_name': 'S', 'email': 'l@example.org'}
    ok(server.post(('student', 'c', 'lawrence'), user='kevin', data=person))
    files = {'files': tree({'ps1.ipynb': b'release'})}
    ok(server.post(('assignment', 'c', 'ps1'), user='kevin', data=files))
    files = {'files': tree({'ps1.ipynb': b'answer'})}
    ok(server.post(('submission', 'c', 'ps1'), user='lawrence', data=files))
    stamp = ok(server.get(('submissions', 'c', 'ps1'), user='kevin'))['submissions']
    files = {
        'files': tree({'ps1.html': b'feedback'}),
        'timestamp': stamp[0]['timestamp'],
    }
    ok(server.post(('feedback', 'c', 'ps1', 'lawrence'), user='kevin', data=files))


def rows(server) -> dict[str, list]:
    """Every table's rows, from the debug dump."""
    dump = ok(server.get(DUMP, user=ADMIN, params={'action': 'dump'}))
    assert dump.pop('success') is True
    return dump


def blobs(server) -> list[str]:
    return sorted(
        str(path.relative_to(server.storage))
        for path in server.storage.rglob('*')
        if path.is_file() and path.parts[len(server.storage.parts)] == 'sha256'
    )


def test_emptied_server_holds_no_row_and_no_blob(shared_server):
    server = shared_server
    fill(server)
    assert any(rows(server)[table] for table in ('courses', 'submissions', 'files'))
    assert len(blobs(server)) == 3

    server.empty()

    left = rows(server)
    assert len(left) >= 6, left
    assert all(content == [] for content in left.values()), left
    assert blobs(server) == []
    assert ok(server.get('courses', user=ADMIN))['courses'] == []
    # Identities start again, as in a fresh database: the first course made
    # after emptying gets the first id again.
    ok(server.post(('course', 'again'), user=ADMIN))
    assert [course['_id'] for course in rows(server)['courses']] == [1]


def test_each_test_starts_empty(shared_server):
    # Whatever the tests before left (e.g. the test above), this one sees
    # an empty server; fill it for the next.
    assert ok(shared_server.get('courses', user=ADMIN))['courses'] == []
    assert blobs(shared_server) == []
    fill(shared_server)


def test_each_test_starts_empty_again(shared_server):
    test_each_test_starts_empty(shared_server)


def test_shared_server_is_the_service_with_its_stand_alone_defaults(shared_server):
    health = shared_server.get('../healthz')
    assert health.status_code == 200
    # Debug on, as with --vngshare: the refusal names its reason.
    refused = shared_server.post(('course', 'x'), user='kevin')
    assert refused.status_code == 403
    assert json.loads(refused.text) == {
        'success': False,
        'message': 'Permission denied (not admin)',
    }
    # Access log lines are written after the answer is sent: bounded wait.
    for _ in range(100):
        if 'POST /api/course/x' in shared_server.log_text():
            break
        time.sleep(0.05)
    assert '403 POST /api/course/x' in shared_server.log_text()
