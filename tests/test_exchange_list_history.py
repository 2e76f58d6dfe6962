"""``nbgrader list --cached`` tells a student when their submission was
collected and when its feedback was released, from ngshare's history.

In-process exchange classes against a real ngshare (``exchange_site``): the
times are the ones of the history's own entries, per submission (student
and timestamp), in the student's local time on the log line, with one
history request per assignment. Servers that cannot answer (a course it
does not know, a refusal, an HTTP server without ngshare's API, nobody
listening) leave the keys None: real answers of real servers on loopback.
"""

from __future__ import annotations

import datetime
import logging
import socket
import time
import urllib.parse

import pytest
from _exchange import *  # noqa: F403 (the exchange_site fixtures)
from _exchange import ASSIGNMENT, COURSE
from _servers import token_for

from ngshare.exchange import list_history
from ngshare.exchange.client import NgshareClient
from ngshare.exchange.deadlines import from_wire
from ngshare.exchange.list_history import FIELDS, HistoryListing

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings('ignore::sqlalchemy.exc.SAWarning'),
]

#: A zone without summer time, so that the expected texts never change.
ZONE = 'IST-05:30'
OFFSET = datetime.timedelta(hours=5, minutes=30)
NONE = dict.fromkeys(FIELDS.values())


@pytest.fixture
def local_zone(monkeypatch):
    """This process in ``ZONE`` (``TZ`` and ``time.tzset``), and back."""
    monkeypatch.setenv('TZ', ZONE)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def shown(wire: str) -> str:
    """How the plugin shows one of ngshare's instants in ``ZONE``."""
    return f'{from_wire(wire) + OFFSET:%Y-%m-%d %H:%M:%S} IST'


def entries(site, action: str, student: str) -> list[dict]:
    """The course's history entries of ``action`` about ``student``, oldest
    first, as the instructor reads them."""
    body = site.api(
        'GET',
        'history',
        COURSE,
        as_user='kevin',
        params={'action': action, 'student_id': student, 'order': 'oldest'},
    )
    assert body['success'] and body['next'] is None, body
    return body['history']


def history_requests(site) -> int:
    """How many history pages the server has answered, from its access log:
    read once the line of a request sent now is there (a request is logged
    as its answer is finished, so every earlier one is in the log then)."""
    marker = f'marker={time.monotonic_ns()}'
    site.api('GET', 'courses', params={'marker': marker[7:]})
    for _ in range(100):
        log = site.server.log_text()
        if marker in log:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f'{marker} not logged:\n{log}')
    path = urllib.parse.urlsplit(site.url).path
    return sum(
        f'] 200 GET {path}/history/{COURSE}?' in line for line in log.splitlines()
    )


def cached(person, caplog) -> tuple[dict, dict]:
    """``nbgrader list --cached`` as ``person``: ``{timestamp: info}`` and
    ``{timestamp: log line}``."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        listed = person.exchange(
            'list', CourseDirectory__course_id='*', ExchangeList__cached=True
        )
    infos = {sub['timestamp']: sub for a in listed for sub in a['submissions']}
    lines = {}
    for record in caplog.records:
        for stamp in infos:
            if f' {ASSIGNMENT} {stamp} (' in record.getMessage():
                lines[stamp] = record.getMessage()
    assert sorted(lines) == sorted(infos), [r.getMessage() for r in caplog.records]
    return infos, lines


def history_of(info: dict) -> dict:
    return {field: info[field] for field in FIELDS.values()}


def test_cached_list_tells_collect_and_feedback(exchange_site, hub, local_zone, caplog):
    site = exchange_site
    kevin, lawrence, eric = site['kevin'], site['lawrence'], site['eric']
    kevin.write_release()
    kevin.exchange('release_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
    for student in (lawrence, eric):
        student.exchange('fetch_assignment', CourseDirectory__assignment_id=ASSIGNMENT)
        student.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    [first] = lawrence.cached()
    [eric_stamp] = eric.cached()

    # submitted, not collected yet: the keys are there, None, and the line
    # is nbgrader's (no feedback available) as before
    before = history_requests(site)
    infos, lines = cached(lawrence, caplog)
    assert history_of(infos[first]) == NONE
    assert lines[first].endswith(f'{first} (no feedback available)'), lines
    assert history_requests(site) == before + 1

    # the instructor downloads eric's submission only: nothing for lawrence
    site.api('GET', 'submission', COURSE, ASSIGNMENT, 'eric', as_user='kevin')
    infos, lines = cached(lawrence, caplog)
    assert history_of(infos[first]) == NONE
    [collect] = entries(site, 'collect', 'eric')
    infos, lines = cached(eric, caplog)
    assert history_of(infos[eric_stamp]) == {**NONE, 'collected': collect['time']}
    assert lines[eric_stamp].endswith(f', collected {shown(collect["time"])}')

    # collected twice (nbgrader collect's request; its gradebook costs
    # seconds, nothing of the history): the latest
    for _ in range(2):
        site.api('GET', 'submission', COURSE, ASSIGNMENT, 'lawrence', as_user='kevin')
    collects = entries(site, 'collect', 'lawrence')
    assert [e['timestamp'] for e in collects] == [first, first]
    collected = collects[-1]['time']

    # a second submission, the feedback released on the first
    lawrence.exchange('submit', CourseDirectory__assignment_id=ASSIGNMENT)
    [second] = set(lawrence.cached()) - {first}
    kevin.write_feedback('lawrence', first, '<p>good</p>')
    kevin.exchange('release_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
    [released] = entries(site, 'release_feedback', 'lawrence')
    assert released['timestamp'] == first

    # each submission its own: two cached, still one history request
    before = history_requests(site)
    infos, lines = cached(lawrence, caplog)
    assert history_requests(site) == before + 1
    assert history_of(infos[first]) == {
        'collected': collected,
        'feedback_released': released['time'],
        'feedback_fetched': None,
    }
    assert history_of(infos[second]) == NONE
    assert lines[first].endswith(
        f'{first} (feedback ready to be fetched), collected {shown(collected)},'
        f' feedback released {shown(released["time"])}'
    ), lines[first]
    assert lines[second].endswith(f'{second} (no feedback available)')
    # eric: his own collect, no feedback of lawrence's
    infos, _ = cached(eric, caplog)
    assert history_of(infos[eric_stamp])['feedback_released'] is None

    # fetched: the third key (the line already says "already fetched")
    lawrence.exchange('fetch_feedback', CourseDirectory__assignment_id=ASSIGNMENT)
    [fetched] = entries(site, 'fetch_feedback', 'lawrence')
    infos, lines = cached(lawrence, caplog)
    assert infos[first]['feedback_fetched'] == fetched['time']
    assert '(feedback already fetched), collected ' in lines[first]

    # the instructor's --inbound view is unchanged: no history keys
    listed = kevin.exchange('list', ExchangeList__inbound=True)
    assert all(
        not set(FIELDS.values()) & set(sub) for a in listed for sub in a['submissions']
    )

    # the same reading on its own (one server for all: they cost seconds)
    pages_followed(site, first, eric_stamp, history_of(infos[first]), caplog)
    servers_without_history(site, hub, first, caplog)


class Probe(HistoryListing):
    """The history part of the list alone, on a client of any URL."""

    def __init__(self, url: str, user: str):
        self.client = NgshareClient(url, token=token_for(user), retry_delay=0.01)
        self.log = logging.getLogger('ngshare.test.history')


def cache_info(stamp: str, student: str = 'lawrence', course: str = COURSE) -> dict:
    """What ``--cached`` knows of a submission before the history."""
    return {
        'course_id': course,
        'assignment_id': ASSIGNMENT,
        'student_id': student,
        'timestamp': stamp,
    }


def pages_followed(site, first: str, eric_stamp: str, expected: dict, caplog):
    """An instructor reading two students' entries gives each their own;
    one entry a page: every page read, up to the bound."""
    both = Probe(site.url, 'kevin').with_history(
        [cache_info(first), cache_info(eric_stamp, 'eric')]
    )
    assert history_of(both[0]) == expected
    [eric_collect] = entries(site, 'collect', 'eric')
    assert history_of(both[1]) == {**NONE, 'collected': eric_collect['time']}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(list_history, 'PAGE_SIZE', 1)
        [paged] = Probe(site.url, 'lawrence').with_history([cache_info(first)])
        assert history_of(paged) == expected
        # lawrence's entries of ps1, oldest first: fetch, submit, collect
        # x2, submit, release_feedback, fetch_feedback; two pages of one
        # entry read the fetch and the first submit only
        patch.setattr(list_history, 'MAX_PAGES', 2)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            [cut] = Probe(site.url, 'lawrence').with_history([cache_info(first)])
        assert history_of(cut) == NONE
        assert 'is longer than 2 entries' in caplog.text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def servers_without_history(site, hub, stamp: str, caplog) -> None:
    """Whatever answers instead of a history page, the keys are None and
    the list goes on; only a network failure is worth a warning."""
    body = site.api('POST', 'course', 'OTHER', data={'instructors': '["someone"]'})
    assert body['success'], body
    caplog.clear()
    cases = {
        # ngshare's JSON 404 for a path it has no route for
        'no route': Probe(site.url + '/no-history-here', 'lawrence'),
        # an HTTP server that is no ngshare (Tornado's HTML 404, as 0.6.0)
        'not ngshare': Probe(hub.url + '/services/ngshare', 'lawrence'),
        # nobody listening
        'no server': Probe(f'http://127.0.0.1:{closed_port()}/api', 'lawrence'),
    }
    with caplog.at_level(logging.DEBUG, logger='ngshare.test.history'):
        for name, probe in cases.items():
            [found] = probe.with_history([cache_info(stamp)])
            assert history_of(found) == NONE, name
        # a course the server does not know (404), one of which the caller
        # is no member (403)
        found = Probe(site.url, 'lawrence').with_history(
            [cache_info(stamp, course='NOPE'), cache_info(stamp, course='OTHER')]
        )
        assert [history_of(f) for f in found] == [NONE, NONE]
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    warned = [text for level, text in said if level >= logging.WARNING]
    assert len(warned) == 1 and 'cannot reach ngshare' in warned[0], said
    assert any('Course not found' in text for _, text in said), said
    assert any('Permission denied' in text for _, text in said), said
    assert any('not an ngshare API' in text for _, text in said), said
