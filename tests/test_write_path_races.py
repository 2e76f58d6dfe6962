"""No lost blob, none left behind, now that blobs are written before the
transaction (issue 15; ``ngshare.operations.uploads``).

An upload's blobs are written in the worker pool before its write
transaction, as a head start; the transaction stores each again under the
shared blob lock (one existence check when it is there). So a clean-up
that runs in between, and deletes the blob because no row refers to it
yet, must not lose it, and a refused upload must not leave it behind. The
interleavings are forced, not hoped for: the in-process server
(``shared_server``) is hooked between an upload's preparation and its
transaction (:class:`_uploads.Preparations`), where the test runs the real
clean-up (``remove_unreferenced``), or holds one request while another
finishes. Then the same races for real, across two replicas (``pair``):
many identical uploads, some refused, on one database, a shared folder or
one bucket; everything acknowledged downloads byte-exact, ``ngshare-admin
verify`` finds every blob and ``gc`` no orphan.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from _admin import ngshare_admin
from _api import err, files_of, ok, tree
from _races import new_course
from _replicas import TEACHER, assert_no_server_errors, race
from _uploads import Preparations, paths, raw_parts, seed_course

from ngshare.blobs.lifecycle import remove_unreferenced
from ngshare.blobs.store import blob_key

pytestmark = pytest.mark.timeout(180)

COURSE, ASSIGNMENT = 'Races 101', 'Deadline'
STUDENT, OTHER, OUTSIDER = 'student', 'other', 'outsider'
WAIT = 60  # upper bound of any one wait (never a measured time)
CONTENT = b'the same answer, byte for byte\n' * 64


def seed(server) -> None:
    """COURSE taught by TEACHER, with STUDENT and OTHER; ASSIGNMENT released.
    OUTSIDER is in no course."""
    seed_course(server, COURSE, TEACHER, (STUDENT, OTHER), ASSIGNMENT, b'write it')


def send(server, encoding, user, files, assignment=ASSIGNMENT):
    path = ('submission', COURSE, assignment)
    if encoding == 'multipart':
        return raw_parts(server, 'POST', path, user, files)
    return server.post(path, user=user, data={'files': tree(files)}, timeout=WAIT)


def latest(server, student) -> dict[str, bytes]:
    return files_of(
        ok(server.get(('submission', COURSE, ASSIGNMENT, student), user=TEACHER))
    )


# -- a clean-up between the head start and the transaction --------------------


@pytest.mark.both_databases
@pytest.mark.both_storages
@pytest.mark.parametrize('encoding', ['form', 'multipart'])
def test_a_blob_cleaned_up_after_its_head_start_is_stored_again(
    shared_server, monkeypatch, encoding
):
    seed(shared_server)
    runtime = shared_server.runtime
    files = {'answer.txt': CONTENT, 'extra/notes.md': b'# mine\n'}
    removed: list[str] = []

    def clean_up_in_between(upload):
        # What a concurrent failed upload of the same content does, or the
        # sweep, or ngshare-admin gc: no row refers to these blobs yet.
        assert sorted(upload.created) == sorted(map(blob_key, files.values()))
        remove_unreferenced(runtime.writer, runtime.store, upload.created)
        assert not any(runtime.store.exists(key) for key in upload.created)
        removed.extend(upload.created)

    Preparations(monkeypatch).after = clean_up_in_between
    ok(send(shared_server, encoding, STUDENT, files))
    assert len(removed) == len(files)
    assert latest(shared_server, STUDENT) == files
    for content in files.values():
        assert shared_server.blobs.read(blob_key(content)) == content
    assert ngshare_admin(shared_server, 'verify').returncode == 0


# -- a refused upload leaves nothing ---------------------------------------------

REFUSALS = {
    'no such assignment': (STUDENT, 'Missing', 404, 'Assignment not found'),
    'not in the course': (OUTSIDER, ASSIGNMENT, 403, 'Permission denied'),
}


@pytest.mark.both_databases
@pytest.mark.both_storages
@pytest.mark.parametrize('encoding', ['form', 'multipart'])
@pytest.mark.parametrize('case', sorted(REFUSALS))
def test_a_refused_upload_leaves_no_blob(shared_server, monkeypatch, encoding, case):
    seed(shared_server)
    before = shared_server.blob_keys()
    hook = Preparations(monkeypatch)
    user, assignment, status, message = REFUSALS[case]
    files = {'answer.txt': CONTENT, 'more.txt': b'and more'}
    err(send(shared_server, encoding, user, files, assignment), status, message)
    (upload,) = hook.prepared
    # The head start did write them; the refusal removed them again.
    assert sorted(upload.created) == sorted(map(blob_key, files.values()))
    assert shared_server.blob_keys() == before


# -- identical uploads, one refused ------------------------------------------------


class Gate:
    """Holds the request whose tree holds the path ``marker`` after its
    preparation, until the test opens the gate."""

    def __init__(self, marker: str):
        self.marker = marker
        self.prepared = threading.Event()
        self.opened = threading.Event()
        self.upload = None

    def hold(self, upload) -> None:
        if self.marker in paths(upload):
            self.upload = upload
            self.prepared.set()
            assert self.opened.wait(WAIT), f'{self.marker}: the gate never opened'


@pytest.mark.both_databases
@pytest.mark.both_storages
@pytest.mark.parametrize('first', ['refused', 'accepted'])
def test_identical_uploads_one_refused_keep_the_accepted_ones_blob(
    shared_server, monkeypatch, first
):
    """The refused upload wrote the blob (its head start came first), the
    accepted one found it there; whichever transaction runs first, the blob
    stays: the refusal's clean-up runs before the other commits (and the
    other stores it again), or after (and the reference keeps it)."""
    seed(shared_server)
    key = blob_key(CONTENT)
    refused, accepted = Gate('theirs.txt'), Gate('mine.txt')

    def hold_both(upload):
        refused.hold(upload)
        accepted.hold(upload)

    Preparations(monkeypatch).after = hold_both
    gates = {'refused': refused, 'accepted': accepted}
    with ThreadPoolExecutor(2) as clients:
        try:
            refusal = clients.submit(
                send, shared_server, 'form', OUTSIDER, {'theirs.txt': CONTENT}
            )
            assert refused.prepared.wait(WAIT)
            acceptance = clients.submit(
                send, shared_server, 'form', STUDENT, {'mine.txt': CONTENT}
            )
            assert accepted.prepared.wait(WAIT)
            assert refused.upload.created == [key] and accepted.upload.created == []
            second = 'accepted' if first == 'refused' else 'refused'
            answers = {'refused': refusal, 'accepted': acceptance}
            gates[first].opened.set()
            answers[first].result(WAIT)
            if first == 'refused':
                # Removed by the refusal's clean-up: nothing referred to it.
                assert key not in shared_server.blob_keys()
            gates[second].opened.set()
        finally:
            refused.opened.set()
            accepted.opened.set()
        err(refusal.result(WAIT), 403, 'Permission denied')
        ok(acceptance.result(WAIT))
    assert shared_server.blobs.read(key) == CONTENT
    assert latest(shared_server, STUDENT) == {'mine.txt': CONTENT}
    assert ngshare_admin(shared_server, 'verify').returncode == 0


# -- the same, for real, across two replicas ----------------------------------------

ROUNDS = 3
CLASS = [f'pupil{i}' for i in range(6)]
STRANGERS = [f'stranger{i}' for i in range(3)]


def round_tree(r: int) -> dict[str, bytes]:
    """What every racer of round ``r`` sends: one tree, identical for all."""
    return {
        'answer.ipynb': b'{"round": %d}\n' % r + CONTENT,
        'data/shared.bin': bytes(range(256)) * 8,
    }


def test_identical_submissions_and_refusals_across_replicas(pair):
    new_course(pair[0], COURSE, students=CLASS)
    ok(
        pair[1].post(
            ('assignment', COURSE, ASSIGNMENT),
            user=TEACHER,
            data={'files': tree({'task.txt': b'write it'})},
            timeout=WAIT,
        )
    )
    # Each racer: (user, assignment, the answer it must get).
    racers = [(s, ASSIGNMENT, 200) for s in CLASS]
    racers += [(s, ASSIGNMENT, 403) for s in STRANGERS]
    racers += [(s, 'Missing', 404) for s in CLASS[:3]]
    acknowledged = []
    for r in range(ROUNDS):
        files = round_tree(r)
        answers = race(
            len(racers),
            lambda i, files=files: send(
                pair[i % 2], 'form', racers[i][0], files, racers[i][1]
            ),
        )
        for (user, _, status), answer in zip(racers, answers):
            if status == 200:
                acknowledged.append((user, ok(answer)['timestamp'], files))
            elif status == 403:
                err(answer, 403, 'Permission denied')
            else:
                err(answer, 404, 'Assignment not found')
    assert len(acknowledged) == ROUNDS * len(CLASS)
    for server in pair:
        for user, stamp, files in acknowledged:
            answer = server.get(
                ('submission', COURSE, ASSIGNMENT, user),
                user=TEACHER,
                params={'timestamp': stamp},
                timeout=WAIT,
            )
            assert files_of(ok(answer)) == files
    verified = ngshare_admin(pair[0], 'verify')
    assert verified.returncode == 0, verified.stdout + verified.stderr
    orphans = ngshare_admin(pair[0], 'gc', '--grace-seconds', '0')
    assert orphans.returncode == 0, orphans.stderr
    assert orphans.stdout.split() == [], orphans.stdout + orphans.stderr
    assert_no_server_errors(pair)
