"""Every way an exchange step can fail: one ExchangeError, one clear message.

In-process (the exchange classes as nbgrader builds them) and through the
real ``nbgrader`` commands, which must exit non-zero with the message on
standard error and no traceback. Nothing here mocks HTTP: the server is a
real ngshare, an address where nothing listens, or a web server that is not
ngshare.
"""

from __future__ import annotations

import contextlib
import logging

import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE, Site, make_notebook, run_cli
from _servers import free_port
from nbgrader.exchange import ExchangeError

pytestmark = pytest.mark.timeout(300)


def fails(person, kind: str, *needles: str, **settings) -> str:
    """Run the exchange step; it must raise ExchangeError naming ``needles``."""
    with pytest.raises(ExchangeError) as info:
        person.exchange(kind, **settings)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f'{needle!r} not in {message!r}'
    assert 'Traceback' not in message
    return message


@pytest.fixture
def released(exchange_site: Site) -> Site:
    kevin = exchange_site['kevin']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    return exchange_site


# --------------------------------------------------------------------------
# refusals of the server: its message, with the course and the assignment


def test_course_not_found(released):
    message = fails(
        released['lawrence'],
        'fetch_assignment',
        'Course not found',
        CourseDirectory__course_id='NOPE',
        CourseDirectory__assignment_id=ASSIGNMENT,
    )
    assert message == (
        "Cannot fetch assignment 'ps1' of course 'NOPE': Course not found"
    )
    fails(
        released['kevin'],
        'list',
        "list the assignments of course 'NOPE': Course not found",
        CourseDirectory__course_id='NOPE',
    )


def test_assignment_not_found(released):
    fails(
        released['lawrence'],
        'fetch_assignment',
        "Cannot fetch assignment 'ps9' of course 'NBG101': Assignment not found",
        CourseDirectory__assignment_id='ps9',
    )
    assert not (released['lawrence'].home / 'ps9').exists()


def test_permission_denied(released):
    oscar, lawrence = released['oscar'], released['lawrence']
    fails(
        oscar,
        'fetch_assignment',
        "Cannot fetch assignment 'ps1' of course 'NBG101': Permission denied",
        CourseDirectory__assignment_id=ASSIGNMENT,
    )
    assert not (oscar.home / ASSIGNMENT).exists()
    # a student cannot release, collect or list what others submitted
    lawrence.write_release('ps2')
    fails(
        lawrence,
        'release_assignment',
        "release assignment 'ps2' of course 'NBG101': Permission denied",
        CourseDirectory__assignment_id='ps2',
    )
    fails(
        lawrence,
        'collect',
        'Permission denied',
        CourseDirectory__assignment_id=ASSIGNMENT,
    )
    assert not (lawrence.course_dir / 'submitted').exists()
    fails(lawrence, 'list', 'Permission denied', ExchangeList__inbound=True)
    # oscar submits into a course he does not take: refused, nothing cached
    make_notebook(oscar.home / ASSIGNMENT / 'ps1.ipynb')
    fails(
        oscar,
        'submit',
        "assignment 'ps1' of course 'NBG101': Permission denied",
        CourseDirectory__assignment_id=ASSIGNMENT,
    )
    assert oscar.cached() == {}


def test_assignment_exists(released):
    kevin = released['kevin']
    fails(
        kevin,
        'release_assignment',
        "Cannot release assignment 'ps1' of course 'NBG101': it is already"
        ' released; add --force',
        CourseDirectory__assignment_id=ASSIGNMENT,
    )


def test_invalid_and_missing_token(released):
    lawrence = released['lawrence']
    fails(
        lawrence,
        'list',
        'Invalid token (JupyterHub does not accept the token',
        env={'JUPYTERHUB_API_TOKEN': 'not-a-token'},
    )
    # stand-alone, no token and no user on a read: 401 Login required
    fails(
        lawrence,
        'list',
        'Login required (no JupyterHub API token was sent',
        env={'JUPYTERHUB_API_TOKEN': None},
    )


def test_feedback_for_an_unknown_submission(released):
    kevin = released['kevin']
    kevin.write_feedback('lawrence', '2020-01-30 10:30:47.524219 UTC', '<p>x</p>')
    fails(
        kevin,
        'release_feedback',
        "Cannot release feedback on assignment 'ps1' of course 'NBG101' for:"
        ' lawrence (Submission not found)',
        CourseDirectory__assignment_id=ASSIGNMENT,
    )


# --------------------------------------------------------------------------
# the server is not there, or is not ngshare


def test_server_unreachable_is_retried_once_then_reported(released, caplog):
    url = f'http://127.0.0.1:{free_port()}/services/ngshare'
    lawrence = released['lawrence']
    caplog.set_level(logging.WARNING)
    message = fails(
        lawrence,
        'fetch_assignment',
        f"Cannot fetch assignment 'ps1' of course 'NBG101': cannot reach ngshare"
        f' at {url} (connection refused)',
        CourseDirectory__assignment_id=ASSIGNMENT,
        url=url,
    )
    assert message.count('\n') == 0
    retried = [r for r in caplog.records if 'trying again' in r.getMessage()]
    assert len(retried) == 1, [r.getMessage() for r in caplog.records]
    assert not (lawrence.home / ASSIGNMENT).exists()
    # a write that never reached the server is retried too, then reported
    make_notebook(lawrence.home / ASSIGNMENT / 'ps1.ipynb')
    caplog.clear()
    fails(
        lawrence,
        'submit',
        'cannot reach ngshare',
        CourseDirectory__assignment_id=ASSIGNMENT,
        url=url,
    )
    assert lawrence.cached() == {}


def test_non_json_reply(released, hub):
    # the Hub stand-in is a web server, but not ngshare: HTML 404 pages
    fails(
        released['lawrence'],
        'list',
        f'{hub.url}/courses is not an ngshare API: it answered GET with HTTP 404',
        CourseDirectory__course_id='*',
        url=hub.url,
    )


def test_url_not_configured(released):
    fails(
        released['lawrence'],
        'list',
        'Cannot use ngshare: the ngshare URL is not configured: call'
        " configureExchange(c, 'http://HOST:PORT/services/ngshare')",
        url='',
    )


def test_zero_to_jupyterhub_default_url(exchange_site, monkeypatch):
    from ngshare.exchange import KUBERNETES_URL, Exchange

    config = exchange_site['lawrence'].config(url='')
    monkeypatch.delenv('PROXY_PUBLIC_SERVICE_HOST', raising=False)
    monkeypatch.setenv('KUBERNETES_SERVICE_HOST', '10.0.0.1')
    assert Exchange(config=config).url == KUBERNETES_URL
    assert KUBERNETES_URL == 'http://proxy-public/services/ngshare'
    # a configured URL wins
    config = exchange_site['lawrence'].config()
    assert Exchange(config=config).url == exchange_site.url


# --------------------------------------------------------------------------
# too large, before the upload and at the server


def test_larger_than_max_dir_size_fails_before_upload(exchange_site):
    kevin = exchange_site['kevin']
    kevin.write_release(**{'data.bin': b'x' * 5000})
    fails(
        kevin,
        'release_assignment',
        "Cannot release assignment 'ps1' of course 'NBG101':",
        'more than CourseDirectory.max_dir_size allows (4 kB)',
        CourseDirectory__assignment_id=ASSIGNMENT,
        CourseDirectory__max_dir_size=4,
    )
    assert exchange_site.api('GET', 'assignments', COURSE)['assignments'] == []


def test_request_too_large_for_the_server(start_ngshare, hub, tmp_path):
    from _exchange import _site

    site = _site(start_ngshare, hub, tmp_path, hub_mode=False)
    big = start_ngshare(
        hub_mode=False,
        hub=hub,
        args=['--jupyterhub_api_url', hub.api_url, '--max-body-size', '4K'],
        database_url=site.server.database_url,
        storage=site.server.storage,
    )
    site.url = big.api.rstrip('/')
    kevin = site['kevin']
    kevin.write_release(**{'data.bin': b'x' * 20000})
    fails(
        kevin,
        'release_assignment',
        "Cannot release assignment 'ps1' of course 'NBG101': Request too large"
        ' (the upload is larger than the ngshare server accepts',
        CourseDirectory__assignment_id=ASSIGNMENT,
    )


# --------------------------------------------------------------------------
# local mistakes


def test_local_mistakes(released):
    lawrence, kevin = released['lawrence'], released['kevin']
    fails(
        lawrence,
        'fetch_assignment',
        'No course id specified',
        CourseDirectory__course_id='*',
        CourseDirectory__assignment_id=ASSIGNMENT,
    )
    lawrence.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    fails(
        lawrence,
        'fetch_assignment',
        'You already have a copy of the assignment in this directory: ps1',
        CourseDirectory__assignment_id=ASSIGNMENT,
    )
    fails(
        lawrence,
        'submit',
        "Cannot submit as 'eric'",
        CourseDirectory__assignment_id=ASSIGNMENT,
        CourseDirectory__student_id='eric',
    )
    fails(
        lawrence,
        'submit',
        'Assignment not found at:',
        CourseDirectory__assignment_id='ps9',
    )
    fails(
        kevin,
        'release_assignment',
        'Assignment not found at:',
        CourseDirectory__assignment_id='ps9',
    )
    fails(
        kevin,
        'list',
        'Cannot remove submissions: ngshare keeps every submission',
        ExchangeList__inbound=True,
        ExchangeList__remove=True,
    )
    # strict: a missing notebook stops the submission
    (lawrence.home / ASSIGNMENT / 'ps1.ipynb').rename(
        lawrence.home / ASSIGNMENT / 'renamed.ipynb'
    )
    fails(
        lawrence,
        'submit',
        'Assignment ps1 not submitted. There are missing notebooks',
        CourseDirectory__assignment_id=ASSIGNMENT,
        ExchangeSubmit__strict=True,
    )


# --------------------------------------------------------------------------
# the nbgrader commands: exit status 1, the message, no traceback


def assert_failed(done, *needles: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    for needle in needles:
        assert needle in done.stderr, f'{needle!r} not in:\n{output}'
    assert 'Traceback' not in output, output


def test_nbgrader_commands_exit_non_zero(released, hub):
    lawrence, kevin, oscar = released['lawrence'], released['kevin'], released['oscar']
    done = run_cli(lawrence, 'nbgrader', 'list')
    assert done.returncode == 0, done.stderr
    assert f'{COURSE} {ASSIGNMENT}' in done.stderr

    done = run_cli(lawrence, 'nbgrader', 'fetch_assignment', 'ps1', '--course', 'NOPE')
    assert_failed(
        done, "Cannot fetch assignment 'ps1' of course 'NOPE': Course not found"
    )
    done = run_cli(oscar, 'nbgrader', 'fetch_assignment', 'ps1', '--course', COURSE)
    assert_failed(done, 'Permission denied', 'nbgrader fetch_assignment failed')

    # release twice (the course directory names the course)
    (kevin.course_dir / 'nbgrader_config.py').write_text(
        f'c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n'
    )
    done = run_cli(kevin, 'nbgrader', 'release_assignment', 'ps1', cwd=kevin.course_dir)
    assert_failed(done, 'it is already released; add --force')
    done = run_cli(
        kevin,
        'nbgrader',
        'release_assignment',
        'ps1',
        '--force',
        cwd=kevin.course_dir,
    )
    assert done.returncode == 0, done.stderr

    # unreachable and not ngshare
    url = f'http://127.0.0.1:{free_port()}/services/ngshare'
    done = run_cli(lawrence, 'nbgrader', 'list', url=url)
    assert_failed(done, f'cannot reach ngshare at {url}', 'nbgrader list failed')
    done = run_cli(lawrence, 'nbgrader', 'list', url=hub.url)
    assert_failed(done, 'is not an ngshare API')

    # submit with nothing to submit, and a bogus token
    done = run_cli(lawrence, 'nbgrader', 'submit', 'ps1', '--course', COURSE)
    assert_failed(done, 'Assignment not found at:')
    done = run_cli(
        lawrence,
        'nbgrader',
        'fetch_assignment',
        'ps1',
        '--course',
        COURSE,
        env={'JUPYTERHUB_API_TOKEN': 'bogus'},
    )
    assert_failed(done, 'Invalid token')

    # and the good path through the commands
    done = run_cli(lawrence, 'nbgrader', 'fetch_assignment', 'ps1', '--course', COURSE)
    assert done.returncode == 0, done.stderr
    done = run_cli(lawrence, 'nbgrader', 'submit', 'ps1', '--course', COURSE)
    assert done.returncode == 0, done.stderr
    (stamp,) = lawrence.cached()
    assert f'Submitted as: {COURSE} {ASSIGNMENT} {stamp}' in done.stderr
    done = run_cli(lawrence, 'nbgrader', 'list', '--cached')
    assert done.returncode == 0, done.stderr
    assert (
        f'{COURSE} lawrence {ASSIGNMENT} {stamp} (no feedback available)' in done.stderr
    )


class Hangup:
    """A loopback TCP server that reads each request and closes, answerless."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.url = f'http://127.0.0.1:{self.sock.getsockname()[1]}/services/ngshare'
        self.connections = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(65536)

    def close(self):
        self.sock.close()


def test_lost_answers(exchange_site):
    hangup = Hangup()
    try:
        kevin = exchange_site['kevin']
        # a read is sent again once, then reported
        fails(
            kevin,
            'list',
            f"Cannot list the assignments of course 'NBG101': cannot reach ngshare"
            f' at {hangup.url} (the connection was closed before an answer)',
            url=hangup.url,
        )
        assert hangup.connections == 2
        # a change is not sent twice: it may have been made
        kevin.write_release()
        before = hangup.connections
        fails(
            kevin,
            'release_assignment',
            f'ngshare at {hangup.url} did not answer POST',
            'the change may or may not have been made, check before trying again',
            CourseDirectory__assignment_id=ASSIGNMENT,
            url=hangup.url,
        )
        assert hangup.connections == before + 1
    finally:
        hangup.close()


# --------------------------------------------------------------------------
# network errors are told apart by their types (requests, urllib3, socket)


def unresolved(code: int) -> Exception:
    """requests' error for a host name that cannot be resolved.

    Built as urllib3 and requests build it (no lookup leaves the machine);
    its text names none of the words a reason could be guessed from.
    """
    import socket

    import requests
    import urllib3
    from urllib3.connection import HTTPConnection

    try:
        try:
            raise socket.gaierror(code, 'lookup failed')
        except socket.gaierror as error:
            raise urllib3.exceptions.NameResolutionError(
                'ngshare.example', HTTPConnection('ngshare.example'), error
            ) from error
    except urllib3.exceptions.NewConnectionError as error:
        return requests.ConnectionError(
            urllib3.exceptions.MaxRetryError(None, '/courses', error)
        )


@pytest.mark.parametrize(
    ('code', 'reason'),
    [('EAI_NONAME', 'name or service not known'), ('EAI_AGAIN', 'host name not found')],
)
def test_an_unresolved_host_is_told_by_type(code, reason):
    import socket

    from ngshare.exchange.client import _is_connect_error, _reason

    error = unresolved(getattr(socket, code))
    assert _reason(error) == reason
    # never reached a server: a change may be sent again
    assert _is_connect_error(error)


def test_a_server_that_never_answers():
    import socket

    from ngshare.exchange.client import NgshareClient, NgshareError

    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(8)
    url = f'http://127.0.0.1:{silent.getsockname()[1]}/services/ngshare'
    client = NgshareClient(url, token='', user='kevin', timeout=0.2, retry_delay=0)
    try:
        with pytest.raises(NgshareError) as info:
            client.get('courses')
        assert str(info.value) == f'cannot reach ngshare at {url} (no answer in time)'
        # a read is sent again once: two connections were made
        accepted = 0
        silent.settimeout(0)
        with contextlib.suppress(BlockingIOError):
            while accepted < 3:
                silent.accept()[0].close()
                accepted += 1
        assert accepted == 2
    finally:
        client.close()
        silent.close()
