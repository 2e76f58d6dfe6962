"""The welcome page and the database view in a real browser.

Debian's ``chromium``, headless, driven over the DevTools protocol (a small
client over ``websocket-client``; nothing downloads a browser). Each page is
loaded as an admin and as another user, at a desktop and a phone size; the
test reads the rendered DOM (who is signed in, which debug actions show, the
dump's rows), checks that nothing is wider than the screen and that the
pages' Content-Security-Policy still lets their style sheet apply, presses
a debug action's button (a form posting with the XSRF token), and saves a
screenshot of every page to ``test-artifacts/``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from _api import ok
from _components import unavailable
from _servers import REPO_ROOT, token_for

websocket = pytest.importorskip(
    'websocket', reason='websocket-client is not installed (the test extra)'
)

CHROMIUM = shutil.which('chromium') or (
    '/usr/bin/chromium' if os.path.exists('/usr/bin/chromium') else None
)
if CHROMIUM is None:
    unavailable(
        'Debian chromium is not installed (apt-get install chromium; '
        'testing/run-tests installs it as root)'
    )

ARTIFACTS = REPO_ROOT / 'test-artifacts'
ACCENT = 'rgb(243, 119, 38)'  # --accent, #f37726, of base.html
VIEWPORTS = {'desktop': (1280, 800, False), 'phone': (390, 844, True)}
COURSE = 'Browser 101 – zoë'
DUMP = 'initialize-Data6ase?action=dump&human-readable=true'
CHROMIUM_FLAGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-dev-shm-usage',
    '--remote-debugging-port=0',
    '--remote-allow-origins=*',
]


class Browser:
    """Headless Chromium and one page, over the DevTools protocol."""

    def __init__(self, workdir: Path):
        self.profile = workdir / 'chromium-profile'
        self.profile.mkdir(parents=True)
        self.log = open(workdir / 'chromium.log', 'wb')  # noqa: SIM115
        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f'--user-data-dir={self.profile}'],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.ws = websocket.create_connection(self._browser_url(), timeout=30)
        target = self.call('Target.createTarget', url='about:blank')['targetId']
        self.session = self.call(
            'Target.attachToTarget', targetId=target, flatten=True
        )['sessionId']
        for domain in ('Page', 'Network', 'Runtime'):
            self.call(f'{domain}.enable', session=True)

    def _browser_url(self) -> str:
        port_file = self.profile / 'DevToolsActivePort'
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                log = (self.profile.parent / 'chromium.log').read_text(errors='replace')
                raise AssertionError(f'chromium did not start:\n{log}')
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        return f'ws://127.0.0.1:{port}{path}'

    def call(self, method: str, *, session: bool = False, **params) -> dict:
        """Send one command and wait for its answer (events are kept aside)."""
        message = {'id': next(self.ids), 'method': method, 'params': params}
        if session:
            message['sessionId'] = self.session
        self.ws.send(json.dumps(message))
        while True:
            answer = json.loads(self.ws.recv())
            if 'method' in answer:
                self.events.append(answer)
            if answer.get('id') == message['id']:
                if 'error' in answer:
                    raise AssertionError(f'{method}: {answer["error"]}')
                return answer.get('result', {})

    def viewport(self, width: int, height: int, mobile: bool) -> None:
        self.call(
            'Emulation.setDeviceMetricsOverride',
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    def headers(self, headers: dict[str, str]) -> None:
        self.call('Network.setExtraHTTPHeaders', session=True, headers=headers)

    def open(self, url: str) -> int:
        """Load ``url``; return the HTTP status of the document."""
        self.events = []
        frame = self.call('Page.navigate', session=True, url=url)
        assert 'errorText' not in frame, frame
        return self.wait_loaded()

    def wait_loaded(self) -> int:
        """Wait for the page being loaded; return its document's status."""
        deadline = time.monotonic() + 30
        status = None
        while True:
            for event in self.events:
                if (
                    event.get('method') == 'Network.responseReceived'
                    and event['params'].get('type') == 'Document'
                ):
                    status = event['params']['response']['status']
                if event.get('method') == 'Page.loadEventFired':
                    assert status is not None, 'no document response seen'
                    return status
            assert time.monotonic() < deadline, 'the page did not load'
            self.events.append(json.loads(self.ws.recv()))

    def js(self, expression: str):
        result = self.call(
            'Runtime.evaluate',
            session=True,
            expression=expression,
            returnByValue=True,
        )
        assert 'exceptionDetails' not in result, result
        return result['result'].get('value')

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        data = self.call(
            'Page.captureScreenshot',
            session=True,
            format='png',
            captureBeyondViewport=True,
        )['data']
        path = ARTIFACTS / f'{name}.png'
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    instance = Browser(tmp_path_factory.mktemp('browser'))
    yield instance
    instance.close()


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def screen(request, browser):
    width, height, mobile = VIEWPORTS[request.param]
    browser.viewport(width, height, mobile)
    browser.headers({})
    return request.param


def page_state(browser) -> dict:
    """What a person sees, read from the rendered page."""
    return browser.js(
        """(() => {
        const text = (s) => { const e = document.querySelector(s);
                              return e ? e.innerText : null; };
        return {
          title: document.title,
          who: text('#who'),
          signedIn: text('#signed-in'),
          debugActions: !!document.querySelector('#debug-actions'),
          actions: [...document.querySelectorAll('#debug-actions .button')]
                     .map((a) => a.id),
          forms: [...document.querySelectorAll('#debug-actions form')]
                     .map((f) => f.method + ' ' + f.querySelector('.button').id),
          headerColor: getComputedStyle(document.querySelector('header.top'))
                     .backgroundColor,
          navDatabase: [...document.querySelectorAll('header nav a')]
                     .some((a) => a.textContent.trim() === 'Database'),
          courses: text('#table-courses'),
          tables: [...document.querySelectorAll('section[id^="table-"]')]
                     .map((s) => s.id.slice(6)),
          scripts: document.scripts.length,
          scrollWidth: document.documentElement.scrollWidth,
          // Not innerWidth: under a phone's emulation the layout viewport
          // grows to fit a page too wide, so only clientWidth stays the
          // screen's width.
          clientWidth: document.documentElement.clientWidth,
          body: document.body.innerText,
        };
      })()"""
    )


def assert_fits(state: dict, what: str) -> None:
    assert state['scrollWidth'] <= state['clientWidth'], (
        f'{what}: page is {state["scrollWidth"]}px wide in a '
        f'{state["clientWidth"]}px window'
    )
    assert state['scripts'] == 0, f'{what}: the page runs scripts'
    # The inline style sheet applied: the policy allows what the page needs.
    assert state['headerColor'] == ACCENT, f'{what}: style sheet blocked?'


def press(browser, button_id: str) -> int:
    """Click a button of the page; return the status of the page it loads.

    The click is a DevTools input, not a script of the page's own.
    """
    box = browser.js(
        f"""(() => {{ const b = document.getElementById('{button_id}');
                      b.scrollIntoView({{block: 'center'}});
                      const r = b.getBoundingClientRect();
                      return [r.x + r.width / 2, r.y + r.height / 2]; }})()"""
    )
    browser.events = []
    for kind in ('mousePressed', 'mouseReleased'):
        browser.call(
            'Input.dispatchMouseEvent',
            session=True,
            type=kind,
            x=box[0],
            y=box[1],
            button='left',
            clickCount=1,
        )
    return browser.wait_loaded()


def create_course(server) -> None:
    ok(
        server.post(
            ('course', COURSE), user='root', data={'instructors': json.dumps(['eric'])}
        )
    )
    ok(
        server.post(
            ('student', COURSE, 'lawrence' * 12),  # a long name must still fit
            user='eric',
            data={'first_name': 'L', 'last_name': 'W', 'email': 'l@example.org'},
        )
    )


def test_stand_alone_pages(browser, screen, vngshare_server):
    server = vngshare_server
    create_course(server)

    # The admin: welcome page with every debug action (debug mode is on).
    assert browser.open(server.api + '?user=root') == 200
    home = page_state(browser)
    browser.screenshot(f'standalone-home-root-{screen}')
    assert home['who'] == 'root · admin'
    assert 'Signed in as root (administrator)' in home['signedIn']
    assert home['actions'] == [
        'action-view',
        'action-dump',
        'action-clear',
        'action-init',
    ]
    assert home['forms'] == ['post action-clear', 'post action-init']
    assert 'Stand-alone mode' in home['body']
    assert_fits(home, 'welcome page')

    # Following "View database" keeps the caller, and shows the course.
    href = browser.js("document.querySelector('#action-view').href")
    assert 'user=root' in href
    assert browser.open(href) == 200
    dump = page_state(browser)
    browser.screenshot(f'standalone-dump-root-{screen}')
    assert dump['title'] == 'ngshare database'
    assert dump['who'] == 'root · admin'
    assert COURSE in dump['courses']
    assert {'courses', 'users', 'roster', 'assignments', 'files'} <= set(dump['tables'])
    assert 'lawrence' * 12 in dump['body']
    assert_fits(dump, 'database view')

    # Another user: named, not an admin; stand-alone means debug mode, where
    # the spec opens the debug actions to everyone.
    assert browser.open(server.api + '?user=eric') == 200
    home = page_state(browser)
    browser.screenshot(f'standalone-home-eric-{screen}')
    assert home['who'] == 'eric'
    assert 'Signed in as eric.' in home['signedIn']
    assert 'administrator' not in home['signedIn']
    assert home['debugActions'] and home['navDatabase']
    assert_fits(home, 'welcome page')

    # Nobody named: told how to name oneself; no debug actions.
    assert browser.open(server.api) == 200
    home = page_state(browser)
    assert home['who'] is None
    assert '?user=NAME' in home['signedIn']
    assert not home['debugActions'] and not home['navDatabase']

    # Pressing "Load sample data" posts its form (with the XSRF token and
    # its cookie) and loads the sample courses.
    assert browser.open(server.api + '?user=root') == 200
    assert press(browser, 'action-init') == 200
    answer = json.loads(browser.js('document.body.innerText'))
    assert answer == {
        'success': True,
        'message': 'done',
    }
    assert 'course1' in ok(server.get('courses', user='root'))['courses']


def test_hub_pages(browser, screen, hub_server):
    """Production: debug off; admins see the dump, others no debug action."""
    server = hub_server
    create_course(server)

    browser.headers({'Authorization': f'token {token_for("root")}'})
    assert browser.open(server.api) == 200
    home = page_state(browser)
    browser.screenshot(f'hub-home-root-{screen}')
    assert home['who'] == 'root · admin'
    assert home['actions'] == ['action-view', 'action-dump']
    assert 'need debug mode' in home['body']
    assert 'Stand-alone mode' not in home['body']
    assert_fits(home, 'welcome page')

    assert browser.open(server.api + DUMP) == 200
    dump = page_state(browser)
    browser.screenshot(f'hub-dump-root-{screen}')
    assert COURSE in dump['courses']
    assert_fits(dump, 'database view')

    browser.headers({'Authorization': f'token {token_for("eric")}'})
    assert browser.open(server.api) == 200
    home = page_state(browser)
    browser.screenshot(f'hub-home-eric-{screen}')
    assert home['who'] == 'eric'
    assert 'Signed in as eric.' in home['signedIn']
    assert not home['debugActions']
    assert not home['navDatabase']
    assert 'initialize-Data6ase' not in browser.js('document.documentElement.outerHTML')
    assert_fits(home, 'welcome page')

    assert browser.open(server.api + DUMP) == 403
    assert json.loads(browser.js('document.body.innerText')) == {
        'success': False,
        'message': 'Permission denied',
    }
