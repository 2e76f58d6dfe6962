"""ngshare under a real JupyterHub, configured by the shipped example.

One JupyterHub for the module (see :mod:`_jupyterhub`): started from
``testing/install_jhmanaged/jupyterhub_config.py`` with the real
configurable-http-proxy, it starts ``python -m ngshare`` itself as a managed
service. Every request goes through the proxy, at ``/services/ngshare/``,
with tokens and logins of real Hub users; ngshare asks the real Hub API who
they are.

The last test stops the Hub; keep it last.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.parse

import pytest
import requests
from _api import err, files_of, ok, tree
from _jupyterhub import EXAMPLE_CONFIG, browser_login, environ_of, is_running
from traitlets.config.loader import PyFileConfigLoader

pytestmark = pytest.mark.e2e  # a real JupyterHub: slow, not in the quick lane

ADMIN = 'admin'  # in the example's --admins admin,admin2
USERS = (ADMIN, 'kevin', 'lawrence', 'eric')
DUMP = 'initialize-Data6ase?action=dump&human-readable=true'
AUTHORIZE = '/hub/api/oauth2/authorize'

NOTEBOOK = json.dumps(
    {'cells': [{'cell_type': 'code', 'source': 'print("héllo")'}]}, indent=1
).encode()
BINARY = bytes(range(256)) * 3


def person(name):
    return {'first_name': name.title(), 'last_name': 'Doe', 'email': f'{name}@x.org'}


def quoted(*segments):
    return '/'.join(urllib.parse.quote(segment, safe='') for segment in segments)


class Client:
    """Requests to ngshare through the proxy, with one Hub token."""

    def __init__(self, hub, token):
        self.base = hub.service
        self.token = token

    def request(self, method, *segments, **kwargs):
        headers = {}
        if self.token is not None:
            headers['Authorization'] = f'token {self.token}'
        return requests.request(
            method,
            self.base + quoted(*segments),
            headers=headers,
            allow_redirects=False,
            timeout=30,
            **kwargs,
        )

    def get(self, *segments, **kwargs):
        return self.request('GET', *segments, **kwargs)

    def post(self, *segments, **kwargs):
        return self.request('POST', *segments, **kwargs)


@pytest.fixture(scope='module')
def tokens(real_hub):
    """A Hub API token for each user, created through the Hub's REST API.

    No scopes requested: the token carries its owner's permissions, like
    one made on the Hub's Token page.
    """
    result = {}
    for name in USERS:
        assert real_hub.create_user(name)['name'] == name
        result[name] = real_hub.new_token(name)['token']
    return result


@pytest.fixture(scope='module')
def as_user(real_hub, tokens):
    return {name: Client(real_hub, token) for name, token in tokens.items()}


def create_course(as_user, course, instructors=('kevin',)):
    ok(
        as_user[ADMIN].post(
            'course', course, data={'instructors': json.dumps(list(instructors))}
        )
    )


# --------------------------------------------------------------------------
# the service JupyterHub started


def test_jupyterhub_started_ngshare_as_its_managed_service(real_hub):
    log = real_hub.log_text()
    assert "Starting service 'ngshare'" in log, log
    # ngshare's own start-up line, written to the Hub's output (the service
    # inherits it), with the prefix, host and port the Hub gave it.
    assert f'serving /services/ngshare/ on 127.0.0.1:{real_hub.ngshare_port}' in log, (
        log
    )
    env = environ_of(real_hub.ngshare_pid)
    assert env['JUPYTERHUB_SERVICE_NAME'] == 'ngshare'
    assert env['JUPYTERHUB_SERVICE_PREFIX'] == '/services/ngshare/'
    assert env['JUPYTERHUB_SERVICE_URL'] == f'http://127.0.0.1:{real_hub.ngshare_port}'
    assert env['JUPYTERHUB_API_URL'] == f'http://127.0.0.1:{real_hub.hub_port}/hub/api'
    assert env['JUPYTERHUB_API_TOKEN']
    # The example's admins reached the command line.
    assert real_hub.ngshare_argv[0] == sys.executable
    assert real_hub.ngshare_argv[1:5] == ['-m', 'ngshare', '--admins', 'admin,admin2']


# --------------------------------------------------------------------------
# the nbgrader workflow, with Hub tokens, through the proxy


def test_course_assignment_submission_workflow(as_user):
    course, assignment = 'NBG 101', 'Problem Set 1'
    released = {'ps1/problem1.ipynb': NOTEBOOK, 'ps1/data/blob.bin': BINARY}
    submitted = {'ps1/problem1.ipynb': NOTEBOOK + b'\n# answered'}
    kevin, lawrence, eric = as_user['kevin'], as_user['lawrence'], as_user['eric']

    # The admin (from --admins) creates the course with kevin teaching it.
    create_course(as_user, course)
    assert ok(kevin.get('courses'))['courses'] == [course]

    # kevin enrols lawrence and eric, and releases the assignment.
    for student in ('lawrence', 'eric'):
        ok(kevin.post('student', course, student, data=person(student)))
    ok(kevin.post('assignment', course, assignment, data={'files': tree(released)}))

    # lawrence sees the course, fetches the assignment byte for byte, submits.
    assert ok(lawrence.get('courses'))['courses'] == [course]
    assert ok(lawrence.get('assignments', course))['assignments'] == [assignment]
    assert files_of(ok(lawrence.get('assignment', course, assignment))) == released
    stamp = ok(
        lawrence.post('submission', course, assignment, data={'files': tree(submitted)})
    )['timestamp']
    ok(eric.post('submission', course, assignment, data={'files': tree(released)}))

    # kevin lists the submissions and collects lawrence's, byte for byte.
    listed = ok(kevin.get('submissions', course, assignment))['submissions']
    assert {entry['student_id'] for entry in listed} == {'lawrence', 'eric'}
    assert {'student_id': 'lawrence', 'timestamp': stamp} in listed
    collected = ok(kevin.get('submission', course, assignment, 'lawrence'))
    assert collected['timestamp'] == stamp
    assert files_of(collected) == submitted

    # lawrence sees his own submissions only.
    own = ok(lawrence.get('submissions', course, assignment, 'lawrence'))
    assert own['submissions'] == [{'student_id': 'lawrence', 'timestamp': stamp}]
    err(
        lawrence.get('submissions', course, assignment, 'eric'),
        403,
        'Permission denied',
    )
    err(lawrence.get('submissions', course, assignment), 403, 'Permission denied')
    err(
        lawrence.get('submission', course, assignment, 'eric'),
        403,
        'Permission denied',
    )


def test_user_parameter_is_ignored_under_the_hub(as_user):
    kevin = as_user['kevin']
    err(
        kevin.post('course', 'Forged 101', data={'user': ADMIN}),
        403,
        'Permission denied',
    )
    err(
        kevin.post('course', 'Forged 102', params={'user': ADMIN}),
        403,
        'Permission denied',
    )
    # and the admin's own token does create it: the 403 was about kevin
    ok(as_user[ADMIN].post('course', 'Forged 101', data={'user': 'kevin'}))
    assert 'Forged 101' not in ok(kevin.get('courses'))['courses']


def test_bogus_token_is_refused(real_hub):
    resp = Client(real_hub, 'not-a-token-' + '0' * 32).get('courses')
    err(resp, 403, 'Invalid token')


def test_no_credentials_get_redirects_to_hub_oauth(real_hub):
    resp = Client(real_hub, None).get('courses')
    assert resp.status_code == 302, resp.text
    location = urllib.parse.urlparse(resp.headers['Location'])
    assert location.path == AUTHORIZE, resp.headers['Location']
    query = urllib.parse.parse_qs(location.query)
    assert query['client_id'] == ['service-ngshare']
    assert query['redirect_uri'] == ['/services/ngshare/oauth_callback']
    assert query['response_type'] == ['code']
    assert query['state']
    assert resp.json() == {'success': False, 'message': 'Login required'}


def test_no_credentials_post_is_401(real_hub):
    err(Client(real_hub, None).post('course', 'Anonymous 101'), 401, 'Login required')


def test_single_user_server_token_identifies_the_user(real_hub, as_user):
    """What a stock single-user server's $JUPYTERHUB_API_TOKEN gets: the
    `server` role's scopes, resolved for the user's default server; no
    access:services scope, and no extra configuration needed."""
    course = 'Scoped 101'
    create_course(as_user, course, instructors=['lawrence'])
    model = real_hub.new_token(
        'lawrence', scopes=['users:activity!user', 'access:servers!server=lawrence/']
    )
    assert not any(scope.startswith('access:services') for scope in model['scopes'])
    client = Client(real_hub, model['token'])
    assert course in ok(client.get('courses'))['courses']
    # and it acts as lawrence: his own instructor entry, not someone else's
    ok(client.post('instructor', course, 'lawrence', data=person('lawrence')))
    err(
        client.post('instructor', course, 'kevin', data=person('kevin')),
        403,
        'Permission denied',
    )


def test_token_with_no_scopes_is_refused(real_hub, as_user):
    """The least a token can carry (JupyterHub still adds the identify
    scopes) was not meant for ngshare: refused (docs/security.md)."""
    create_course(as_user, 'Scoped 102', instructors=['lawrence'])
    model = real_hub.new_token('lawrence', scopes=[])
    client = Client(real_hub, model['token'])
    err(client.get('courses'), 403, 'Invalid token')
    err(
        client.post('instructor', 'Scoped 102', 'lawrence', data=person('lawrence')),
        403,
        'Invalid token',
    )


def test_nbgrader_url_of_the_example_reaches_ngshare(real_hub, as_user):
    """nbgrader_config.py's URL form: the service `url` + /services/ngshare.

    ngshare serves its prefix on its own port as well, so a single-user
    server on the Hub's machine may bypass the proxy, with its Hub token.
    """
    create_course(as_user, 'Direct 101')
    direct = f'http://127.0.0.1:{real_hub.ngshare_port}/services/ngshare'
    resp = requests.get(
        direct + '/courses',
        headers={'Authorization': f'token {as_user["kevin"].token}'},
        timeout=30,
    )
    assert 'Direct 101' in ok(resp)['courses']


def test_example_nbgrader_config_points_at_the_example_service():
    """The two example files agree: nbgrader's URL is the service's (read
    with the real ngshare.exchange)."""
    example = EXAMPLE_CONFIG.parent
    hub_config = PyFileConfigLoader(
        'jupyterhub_config.py', path=str(example)
    ).load_config()
    (service,) = [
        entry
        for entry in hub_config.JupyterHub.services.get_value([])
        if entry['name'] == 'ngshare'
    ]
    nbgrader_config = PyFileConfigLoader(
        'nbgrader_config.py', path=str(example)
    ).load_config()
    assert nbgrader_config.Exchange.ngshare_url == service['url'] + '/services/ngshare'
    assert nbgrader_config.CourseDirectory.course_id == '*'


# --------------------------------------------------------------------------
# browsers: Hub login, then OAuth into ngshare


def test_admin_browser_login_reaches_the_database_dump(real_hub, as_user):
    create_course(as_user, 'Browser 101')
    session = requests.Session()
    page = browser_login(session, real_hub.service + DUMP, ADMIN)
    assert page.status_code == 200, (page.url, page.text[:1000])
    # no confirmation page on the way (oauth_no_confirm), straight back here
    assert page.url == real_hub.service + DUMP
    assert page.headers['Content-Type'].startswith('text/html')
    assert 'Browser 101' in page.text
    hops = [urllib.parse.urlparse(r.url).path for r in page.history]
    assert AUTHORIZE in hops and '/services/ngshare/oauth_callback' in hops, hops

    # The ngshare cookie now identifies the admin on the welcome page.
    home = session.get(real_hub.service, timeout=30)
    assert home.status_code == 200
    assert re.search(r'Signed in as <strong>admin</strong>', home.text), home.text


def test_non_admin_browser_login_gets_403_on_the_dump(real_hub, tokens):
    session = requests.Session()
    page = browser_login(session, real_hub.service + DUMP, 'eric')
    assert page.url == real_hub.service + DUMP, page.url
    err(page, 403, 'Permission denied')
    home = session.get(real_hub.service, timeout=30)
    assert 'Signed in as <strong>eric</strong>' in home.text, home.text


def test_control_panel_lists_ngshare_under_services(real_hub, tokens):
    session = requests.Session()
    home = browser_login(session, real_hub.url + '/hub/home', 'kevin')
    assert home.url == real_hub.url + '/hub/home', home.url
    link = re.search(r'<a class="dropdown-item" href="([^"]+)">ngshare</a>', home.text)
    assert link, home.text
    page = session.get(urllib.parse.urljoin(home.url, link.group(1)), timeout=30)
    assert page.status_code == 200
    assert page.url == real_hub.service
    assert 'Welcome' in page.text and 'ngshare' in page.text


def test_control_panel_link_shows_the_signed_in_user(real_hub, tokens):
    session = requests.Session()
    home = browser_login(session, real_hub.url + '/hub/home', 'kevin')
    assert home.url == real_hub.url + '/hub/home', home.url
    page = session.get(real_hub.service, timeout=30)
    assert 'Signed in as <strong>kevin</strong>' in page.text, page.text


# --------------------------------------------------------------------------
# stopping the Hub stops ngshare (keep this test last: it stops the Hub)


def test_stopping_jupyterhub_stops_ngshare(real_hub):
    ngshare_pid, proxy_pid = real_hub.ngshare_pid, real_hub.proxy_pid
    assert is_running(ngshare_pid) and is_running(proxy_pid)
    real_hub.stop()  # SIGTERM, as an administrator (or systemd) would
    assert real_hub.proc.returncode == 0, real_hub.log_text()[-3000:]
    # stop() waited (bounded) for both, and recorded any it had to kill
    assert real_hub.leftovers == [], real_hub.log_text()[-3000:]
    assert not is_running(ngshare_pid) and not is_running(proxy_pid)
    assert 'ngshare stopped' in real_hub.log_text()
