"""The backup and restore procedure of docs/deploying.md, followed literally.

A real ngshare (Hub mode, against the Hub stand-in) holds a course with a
release, a submission and feedback. The guide's commands (read from the page,
see :mod:`_doc_blocks`) back it up while it runs: the database first, then the
storage folder. Between the two, students go on writing (a submission, a
replaced feedback), and more after. The server is stopped, the backup is
restored into a fresh location with the guide's restore commands (which end
with ``ngshare-admin verify``), and a new server on the restored copy must
answer everything as of the database copy byte for byte, keep the login
cookie secret, report as orphans exactly the files written after the
database copy, and accept new writes.

Why the order matters is tested too: taking the folder first and the
database second loses the file of a submission made in between, and
``verify`` says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

from _admin import ngshare_admin
from _api import files_of, ok, tree
from _doc_blocks import DOCS, run_blocks

COURSE = 'NBG 101'
ASSIGNMENT = 'ps1'
INSTRUCTOR = 'kevin'
STUDENTS = ('lawrence', 'eric')
GUIDE = DOCS / 'deploying.md'


def run_guide(names, variables):
    """The guide's blocks ``names``, run as written (see :mod:`_doc_blocks`)."""
    return run_blocks(GUIDE, names, variables)


def blob_key(data: bytes) -> str:
    """The storage key ngshare gives ``data``."""
    digest = hashlib.sha256(data).hexdigest()
    return f'sha256/{digest[:2]}/{digest[2:4]}/{digest}'


def content(label: str, size: int = 2048) -> bytes:
    """Distinct file contents (so each is one blob of its own)."""
    return label.encode() + b'\n' + secrets.token_bytes(size)


def submit(server, student: str, files: dict[str, bytes]) -> str:
    answer = server.post(
        ('submission', COURSE, ASSIGNMENT), user=student, data={'files': tree(files)}
    )
    return ok(answer)['timestamp']


def give_feedback(server, student: str, stamp: str, files: dict[str, bytes]) -> None:
    ok(
        server.post(
            ('feedback', COURSE, ASSIGNMENT, student),
            user=INSTRUCTOR,
            data={'timestamp': stamp, 'files': tree(files)},
        )
    )


def set_up_course(server) -> dict:
    """The state the backup must keep: a release (one file over the size of
    a download piece), one submission and its feedback."""
    ok(
        server.post(
            ('course', COURSE),
            user='root',
            data={'instructors': json.dumps([INSTRUCTOR])},
        )
    )
    for student in STUDENTS:
        ok(
            server.post(
                ('student', COURSE, student),
                user=INSTRUCTOR,
                data={'first_name': student, 'last_name': 'L', 'email': 'x@x.org'},
            )
        )
    release = {
        'ps1.ipynb': content('release notebook'),
        'data/big.bin': content('data', 1_500_000),
    }
    ok(
        server.post(
            ('assignment', COURSE, ASSIGNMENT),
            user=INSTRUCTOR,
            data={'files': tree(release)},
        )
    )
    answer = {'ps1.ipynb': content('lawrence answer')}
    stamp = submit(server, 'lawrence', answer)
    feedback = {'ps1.html': content('feedback of lawrence')}
    give_feedback(server, 'lawrence', stamp, feedback)
    return {'release': release, 'answer': answer, 'stamp': stamp, 'feedback': feedback}


def check_restored(server, state: dict) -> None:
    """Everything as of the database copy, byte for byte; nothing later."""
    fetched = ok(server.get(('assignment', COURSE, ASSIGNMENT), user='eric'))
    assert files_of(fetched) == state['release']
    listed = ok(server.get(('submissions', COURSE, ASSIGNMENT), user=INSTRUCTOR))
    assert [(s['student_id'], s['timestamp']) for s in listed['submissions']] == [
        ('lawrence', state['stamp'])
    ]
    collected = server.get(
        ('submission', COURSE, ASSIGNMENT, 'lawrence'),
        user=INSTRUCTOR,
        params={'timestamp': state['stamp']},
    )
    assert files_of(ok(collected)) == state['answer']
    feedback = server.get(
        ('feedback', COURSE, ASSIGNMENT, 'lawrence'),
        user='lawrence',
        params={'timestamp': state['stamp']},
    )
    assert files_of(ok(feedback)) == state['feedback']


def check_accepts_writes(server) -> None:
    later = {'ps1.ipynb': content('eric after the restore')}
    stamp = submit(server, 'eric', later)
    collected = server.get(
        ('submission', COURSE, ASSIGNMENT, 'eric'),
        user=INSTRUCTOR,
        params={'timestamp': stamp},
    )
    assert files_of(ok(collected)) == later
    done = ngshare_admin(server, 'verify')
    assert done.returncode == 0, done.stdout + done.stderr


def orphans(server) -> set[str]:
    """What ``ngshare-admin gc`` reports, without its grace period."""
    done = ngshare_admin(server, 'gc', '--grace-seconds', '0')
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def guide_variables(database_url: str, storage, backup, pg_url=None) -> dict:
    """The guide's variables for one deployment."""
    result = {
        'NGSHARE_DATABASE': database_url,
        'NGSHARE_STORAGE': str(storage),
        'BACKUP': str(backup),
    }
    if database_url.startswith('sqlite:///'):
        result['NGSHARE_DB_FILE'] = database_url.removeprefix('sqlite:///')
    if pg_url is not None:
        result['PG_URL'] = pg_url
    return result


def backup_restore_round(start_ngshare, hub, tmp_path: Path, *, kind, pg=None):
    """The whole procedure on ``kind`` (``sqlite`` or ``postgresql``);
    ``pg``: the (SQLAlchemy URL, libpq URL) of the source and of the empty
    database to restore into."""
    source_urls, restored_urls = pg or ((None, None), (None, None))
    old = start_ngshare(hub_mode=True, hub=hub, database_url=source_urls[0])
    state = set_up_course(old)
    backup = tmp_path / 'backup'
    backup.mkdir()
    source = guide_variables(old.database_url, old.storage, backup, source_urls[1])

    done = run_guide([f'backup-db-{kind}'], source)
    assert done.returncode == 0, done.stderr
    # Students go on working while the folder is copied.
    between = {'ps1.ipynb': content('eric during the backup')}
    submit(old, 'eric', between)
    replaced = {'ps1.html': content('second feedback of lawrence')}
    give_feedback(old, 'lawrence', state['stamp'], replaced)
    done = run_guide(['backup-files'], source)
    assert done.returncode == 0, done.stderr
    submit(old, 'lawrence', {'ps1.ipynb': content('lawrence after the backup')})
    old.stop()

    new_dir = tmp_path / 'restored'
    stale = new_dir / 'files' / 'left-from-before'
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'not part of the backup')
    target = guide_variables(
        restored_urls[0] or f'sqlite:///{new_dir / "ngshare.db"}',
        new_dir / 'files',
        backup,
        restored_urls[1],
    )
    done = run_guide(['restore-aside', f'restore-db-{kind}', 'restore-files'], target)
    assert done.returncode == 0, done.stdout + done.stderr
    # Release (2 files), the submission, its first feedback: all present.
    assert 'verified 4 files (4 blobs): all intact' in done.stderr, done.stderr
    assert not (new_dir / 'files' / stale.name).exists()
    assert [p.name.split('.broken-')[0] for p in new_dir.glob('*.broken-*')] == [
        'files'
    ]

    new = start_ngshare(
        hub_mode=True,
        hub=hub,
        database_url=target['NGSHARE_DATABASE'],
        storage=target['NGSHARE_STORAGE'],
        workdir=new_dir,
    )
    check_restored(new, state)
    # The files written after the database copy are harmless orphans.
    assert orphans(new) == {
        blob_key(between['ps1.ipynb']),
        blob_key(replaced['ps1.html']),
    }
    # Browser logins survive: the same cookie secret (beside a SQLite file,
    # else in the storage folder).
    secret = 'ngshare_cookie_secret'
    if kind == 'sqlite':
        assert (new_dir / secret).read_bytes() == (old.workdir / secret).read_bytes()
    else:
        assert (new.storage / secret).read_bytes() == (
            old.storage / secret
        ).read_bytes()
    check_accepts_writes(new)


def test_sqlite_backup_while_running_then_restore(start_ngshare, hub, tmp_path):
    backup_restore_round(start_ngshare, hub, tmp_path, kind='sqlite')


def test_postgresql_backup_while_running_then_restore(
    start_ngshare, hub, tmp_path, postgres_server, postgres_url
):
    source_name = postgres_url.rsplit('/', 1)[1]
    restored_name = postgres_server.create_database()
    try:
        backup_restore_round(
            start_ngshare,
            hub,
            tmp_path,
            kind='postgresql',
            pg=tuple(
                (
                    postgres_server.url(name),
                    postgres_server.url(name, driver='postgresql'),
                )
                for name in (source_name, restored_name)
            ),
        )
    finally:
        postgres_server.drop_database(restored_name)


def test_folder_first_loses_what_was_submitted_in_between(start_ngshare, hub, tmp_path):
    """The wrong order: the submission made between the two copies is in the
    database copy but not in the folder copy, and verify reports it."""
    old = start_ngshare(hub_mode=True, hub=hub)
    set_up_course(old)
    backup = tmp_path / 'backup'
    backup.mkdir()
    source = guide_variables(old.database_url, old.storage, backup)
    assert run_guide(['backup-files'], source).returncode == 0
    between = {'ps1.ipynb': content('eric between the copies')}
    submit(old, 'eric', between)
    done = run_guide(['backup-db-sqlite-python'], source)
    assert done.returncode == 0, done.stderr
    old.stop()

    new_dir = tmp_path / 'restored'
    target = guide_variables(
        f'sqlite:///{new_dir / "ngshare.db"}', new_dir / 'files', backup
    )
    done = run_guide(['restore-aside', 'restore-db-sqlite', 'restore-files'], target)
    assert done.returncode == 1, done.stdout + done.stderr
    problems = done.stdout.splitlines()
    assert len(problems) == 1, problems
    assert problems[0].startswith(blob_key(between['ps1.ipynb']) + ': file ')
    assert problems[0].endswith(': missing')
    assert 'ngshare-admin: 1 of 5 files have a missing or bad blob' in done.stderr
    assert os.path.exists(new_dir / 'ngshare.db')
