"""Raw-parts uploads (docs/api.md, *Raw-parts uploads*): the server's answers.

Hand-built multipart bodies sent with ``requests`` to the in-process server
(``shared_server``) and to a process with ``--max-file-size``: byte-exact
round trips for releases, submissions and feedback, the
``Ngshare-Upload-Formats`` header on every answer, the documented refusals
(malformed parts, limits) and their precedence. The plugin's side is in
``test_exchange_uploads_plugin.py``; the requests are built in
:mod:`_uploads`.
"""

from __future__ import annotations

import json
import os

import pytest
import requests
from _api import err, files_of, ok, tree
from _exchange import ASSIGNMENT, COURSE
from _uploads import (
    ADMIN,
    CONTENTS,
    HEADER,
    MULTIPART,
    hand_built,
    manifest,
    raw_parts,
)

pytestmark = pytest.mark.timeout(300)


def seed(server) -> None:
    """kevin teaches COURSE, lawrence takes it; nothing released."""
    ok(
        server.post(
            ('course', COURSE), user=ADMIN, data={'instructors': json.dumps(['kevin'])}
        )
    )
    ok(
        server.post(
            ('student', COURSE, 'lawrence'),
            user='kevin',
            data={'first_name': 'L', 'last_name': 'L', 'email': ''},
        )
    )


# -- the server --------------------------------------------------------------


def test_every_answer_offers_raw_parts(shared_server):
    seed(shared_server)
    answers = [
        shared_server.get('courses', user='kevin'),  # 200
        shared_server.get(('assignment', COURSE, 'nope'), user='kevin'),  # 404
        shared_server.post(('assignment', COURSE, 'a'), user='kevin'),  # 400
        shared_server.get('courses'),  # 401 Login required
        shared_server.post(('course', 'x'), user='lawrence'),  # 403
    ]
    assert [a.status_code for a in answers] == [200, 404, 400, 401, 403]
    assert [a.headers.get(HEADER) for a in answers] == ['multipart'] * 5


def test_release_submit_feedback_round_trips(shared_server):
    seed(shared_server)
    ok(
        raw_parts(
            shared_server, 'POST', ('assignment', COURSE, ASSIGNMENT), 'kevin', CONTENTS
        )
    )
    answer = ok(shared_server.get(('assignment', COURSE, ASSIGNMENT), user='lawrence'))
    assert files_of(answer) == CONTENTS
    submitted = {'ps1.ipynb': b'{"answer": 42}', 'big.bin': os.urandom(600 * 1024)}
    stamp = ok(
        raw_parts(
            shared_server,
            'POST',
            ('submission', COURSE, ASSIGNMENT),
            'lawrence',
            submitted,
        )
    )['timestamp']
    answer = ok(
        shared_server.get(
            ('submission', COURSE, ASSIGNMENT, 'lawrence'),
            user='kevin',
            params={'timestamp': stamp},
        )
    )
    assert files_of(answer) == submitted
    feedback = {'ps1.html': b'<p>\r\n--XyZ--\r\n</p>'}
    ok(
        raw_parts(
            shared_server,
            'POST',
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            'kevin',
            feedback,
            fields={'timestamp': stamp},
        )
    )
    answer = ok(
        shared_server.get(
            ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
            user='lawrence',
            params={'timestamp': stamp},
        )
    )
    assert files_of(answer) == feedback


def test_checksums_are_optional_and_filenames_ignored(shared_server):
    seed(shared_server)
    files = {'a.txt': b'a', 'b/c.txt': b'c'}
    parts = [('manifest', (None, manifest(files, checksums=False)))]
    parts += [('file', ('../../etc/passwd', c)) for c in files.values()]
    ok(
        raw_parts(
            shared_server, 'POST', ('assignment', COURSE, 'a'), 'kevin', parts=parts
        )
    )
    answer = ok(shared_server.get(('assignment', COURSE, 'a'), user='kevin'))
    assert files_of(answer) == files


def test_a_multipart_form_without_manifest_is_an_ordinary_form(shared_server):
    seed(shared_server)
    parts = [('files', (None, tree({'old.txt': b'old'})))]
    ok(
        raw_parts(
            shared_server, 'POST', ('assignment', COURSE, 'a'), 'kevin', parts=parts
        )
    )
    answer = ok(shared_server.get(('assignment', COURSE, 'a'), user='kevin'))
    assert files_of(answer) == {'old.txt': b'old'}
    err(
        raw_parts(
            shared_server,
            'POST',
            ('assignment', COURSE, 'b'),
            'kevin',
            parts=[('other', (None, 'x'))],
        ),
        400,
        'Please supply files',
    )


GOOD = {'a.txt': b'a'}
REFUSED_PARTS = {
    'manifest not JSON': (
        [('manifest', (None, '[{')), ('file', ('0', b'a'))],
        'Files cannot be JSON decoded',
    ),
    'manifest not a list': (
        [('manifest', (None, '{"path": "a.txt"}')), ('file', ('0', b'a'))],
        'Files cannot be JSON decoded',
    ),
    'entry not an object': (
        [('manifest', (None, '["a.txt"]')), ('file', ('0', b'a'))],
        'Files cannot be JSON decoded',
    ),
    'path not a string': (
        [('manifest', (None, '[{"path": 1}]')), ('file', ('0', b'a'))],
        'Files cannot be JSON decoded',
    ),
    'no path': (
        [('manifest', (None, '[{"checksum": "x"}]')), ('file', ('0', b'a'))],
        'Files cannot be JSON decoded',
    ),
    'checksum not a string': (
        [
            ('manifest', (None, '[{"path": "a.txt", "checksum": 5}]')),
            ('file', ('0', b'a')),
        ],
        'Files cannot be JSON decoded',
    ),
    'fewer file parts': (
        [('manifest', (None, manifest({'a': b'', 'b': b''}))), ('file', ('0', b''))],
        'Invalid request body',
    ),
    'more file parts': (
        [
            ('manifest', (None, manifest(GOOD))),
            ('file', ('0', b'a')),
            ('file', ('1', b'a')),
        ],
        'Invalid request body',
    ),
    'files beside the manifest': (
        [
            ('manifest', (None, manifest(GOOD))),
            ('files', (None, tree(GOOD))),
            ('file', ('0', b'a')),
        ],
        'Invalid request body',
    ),
    'illegal path': (
        [('manifest', (None, '[{"path": "../a.txt"}]')), ('file', ('0', b'a'))],
        'Illegal path',
    ),
    'absolute path': (
        [('manifest', (None, '[{"path": "/a.txt"}]')), ('file', ('0', b'a'))],
        'Illegal path',
    ),
    'checksum mismatch': (
        [('manifest', (None, manifest({'a.txt': b'b'}))), ('file', ('0', b'a'))],
        'Checksum mismatch',
    ),
}


@pytest.mark.parametrize('case', sorted(REFUSED_PARTS))
def test_refused_raw_parts(shared_server, case):
    seed(shared_server)
    parts, message = REFUSED_PARTS[case]
    path = ('assignment', COURSE, 'a')
    err(raw_parts(shared_server, 'POST', path, 'kevin', parts=parts), 400, message)
    err(shared_server.get(path, user='kevin'), 404, 'Assignment not found')
    assert shared_server.blob_keys() == []


MALFORMED_FRAMING = {
    'no final boundary': b'--XyZ\r\nContent-Disposition: form-data; name="user"'
    b'\r\n\r\nkevin\r\n',
    'part without Content-Disposition': b'--XyZ\r\nContent-Type: text/plain'
    b'\r\n\r\nx\r\n--XyZ--\r\n',
    'part without name': b'--XyZ\r\nContent-Disposition: form-data\r\n\r\nx'
    b'\r\n--XyZ--\r\n',
    'header block over 8 KiB': b'--XyZ\r\nContent-Disposition: form-data;'
    b' name="manifest"\r\nX-Pad: ' + b'p' * 8200 + b'\r\n\r\n[]\r\n--XyZ--\r\n',
}


@pytest.mark.parametrize('case', sorted(MALFORMED_FRAMING))
def test_malformed_framing(shared_server, case):
    seed(shared_server)
    answer = hand_built(
        shared_server, ('assignment', COURSE, 'a'), MALFORMED_FRAMING[case]
    )
    err(answer, 400, 'Invalid request body')
    assert answer.headers.get(HEADER) == 'multipart'


def test_no_boundary_and_too_many_parts(shared_server):
    seed(shared_server)
    path = ('assignment', COURSE, 'a')
    answer = requests.post(
        shared_server.url(path),
        data=b'--XyZ--\r\n',
        headers={'Content-Type': MULTIPART},
        timeout=60,
    )
    err(answer, 400, 'Invalid request body')
    # 999 files, the manifest and the user field: 1001 parts
    files = {f'f{i}.txt': b'' for i in range(999)}
    err(
        raw_parts(shared_server, 'POST', path, 'kevin', files),
        400,
        'Too many form fields',
    )
    del files['f998.txt']  # 1000 parts
    ok(raw_parts(shared_server, 'POST', path, 'kevin', files))
    assert len(files_of(ok(shared_server.get(path, user='kevin')))) == 998


def test_permission_errors_come_first_as_for_the_old_format(shared_server):
    seed(shared_server)
    broken = [('manifest', (None, '[{')), ('file', ('0', b'a'))]
    cases = [
        (('assignment', 'no course', 'a'), 'kevin', 404, 'Course not found'),
        (('assignment', COURSE, 'a'), 'lawrence', 403, 'Permission denied'),
        (('submission', COURSE, 'nope'), 'lawrence', 404, 'Assignment not found'),
    ]
    for path, user, status, message in cases:
        err(raw_parts(shared_server, 'POST', path, user, parts=broken), status, message)
        old = shared_server.post(path, user=user, data={'files': '[{'})
        err(old, status, message)


def test_file_too_large_through_raw_parts(start_ngshare, tmp_path):
    server = start_ngshare(hub_mode=False, args=['--max-file-size', '1K'])
    seed(server)
    path = ('assignment', COURSE, 'a')
    too_large = {'small.txt': b's', 'big.bin': b'x' * 1025}
    err(raw_parts(server, 'POST', path, 'kevin', too_large), 413, 'File too large')
    err(server.get(path, user='kevin'), 404, 'Assignment not found')
    fits = {'small.txt': b's', 'big.bin': b'x' * 1024}
    ok(raw_parts(server, 'POST', path, 'kevin', fits))
    assert files_of(ok(server.get(path, user='kevin'))) == fits
