"""What the Helm chart tells an administrator: its install notes and refusals.

Rendered with Helm's own engine (``_helm``, no cluster), as in
tests/test_helm_chart.py. The notes are what ``helm install`` prints into a
terminal or a CI log, so they must never contain the Hub API token; they
warn about what would fail later (the unpublished default image, a memory
limit below what the upload limits need); a value the chart refuses gets a
sentence saying what to set, not a regular expression.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shlex
import sys

import pytest

if sys.version_info < (3, 10):  # helm-python-sdk needs 3.10
    pytest.skip('helm-python-sdk needs Python 3.10', allow_module_level=True)

import jsonschema
import yaml
from _helm import CHART, ROOT, HelmFailed, render, started_config
from _helm_releases import ci_releases
from jupyterhub.services.service import Service
from sqlalchemy.engine import make_url
from test_big_files import UPLOAD_FACTOR
from traitlets.config import Config

MIB = 1024**2
SCHEMA = json.loads((CHART / 'values.schema.json').read_text())
TOKEN_MESSAGE = (
    'ngshare: ngshare.hub_api_token must be at least 8 characters without '
    'quotes, backslashes or spaces: generate one with openssl rand -hex 32'
)
IMAGE_WARNING = 'WARNING: the image ngshare/ngshare:'
MEMORY_WARNING = 'WARNING: deployment.resources.limits.memory is'


def with_memory(limit, **ngshare) -> dict:
    return {
        'deployment': {'resources': {'limits': {'memory': limit}}},
        'ngshare': ngshare,
    }


@pytest.fixture(scope='module')
def releases():
    """The ci/ values files, rendered once for the module."""
    return ci_releases()


# --- NOTES.txt: what the administrator copies ---------------------------------


def notes_blocks(notes: str) -> tuple[dict, str]:
    """The Zero to JupyterHub values and the nbgrader_config.py NOTES prints."""
    lines = notes.splitlines()
    start = lines.index('hub:')
    end = lines.index('', start)
    z2jh = yaml.safe_load('\n'.join(lines[start:end]))
    start = lines.index('from ngshare.exchange import configureExchange')
    end = lines.index("c.CourseDirectory.course_id = '*'", start) + 1
    return z2jh, '\n'.join(lines[start:end])


def run_hub_config(z2jh: dict, release, monkeypatch) -> Config:
    """The printed extraConfig, run as the Hub pod runs it: with the
    printed extraEnv, its secretKeyRef read from the release's Secret."""
    for name, item in z2jh['hub']['extraEnv'].items():
        ref = item['valueFrom']['secretKeyRef']
        assert ref['name'] == release.get('Secret')['metadata']['name']
        monkeypatch.setenv(name, release.secret_data()[ref['key']])
    c = Config()
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    for code in z2jh['hub']['extraConfig'].values():
        exec(compile(code, 'extraConfig', 'exec'), {'c': c})  # noqa: S102
    return c


def run_nbgrader_config(code: str) -> tuple[Config, list[str]]:
    """The printed nbgrader_config.py, run with ngshare's own plugin."""
    c = Config()
    exec(compile(code, 'nbgrader_config.py', 'exec'), {'get_config': lambda: c})  # noqa: S102
    assert c.ExchangeFactory.exchange.__module__.startswith('ngshare.exchange')
    return c, [c.Exchange.ngshare_url]


def test_notes_print_the_hub_service_entry(releases, monkeypatch):
    release = releases['default']
    token = release.secret_data()['hub-api-token']
    z2jh, nbgrader_config = notes_blocks(release.notes)
    c = run_hub_config(z2jh, release, monkeypatch)
    assert c.JupyterHub.services == [
        {
            'name': 'ngshare',
            'url': 'http://ngshare.jhub.svc.cluster.local:8080',
            'api_token': token,
            'oauth_no_confirm': True,
        }
    ]
    # Keys JupyterHub's Service accepts.
    assert set(c.JupyterHub.services[0]) <= set(Service.class_trait_names())
    assert c.JupyterHub.load_roles == [
        {'name': 'user', 'scopes': ['self', 'access:services!service=ngshare']}
    ]
    # User servers may reach the ngshare pods (Z2JH's NetworkPolicy).
    (rule,) = z2jh['singleuser']['networkPolicy']['egress']
    selector = rule['to'][0]['podSelector']['matchLabels']
    pod_labels = release.get('Deployment')['spec']['template']['metadata']['labels']
    assert selector.items() <= pod_labels.items()
    assert rule['ports'] == [{'port': 8080, 'protocol': 'TCP'}]

    c, urls = run_nbgrader_config(nbgrader_config)
    assert urls == ['http://ngshare.jhub.svc.cluster.local:8080/services/ngshare']
    assert c.CourseDirectory.course_id == '*'
    assert 'ngshare.hub_api_token is not set' in release.notes
    assert 'WARNING' not in release.notes


def test_notes_follow_release_namespace_port_and_prefix(releases, monkeypatch):
    release = releases['custom']
    z2jh, nbgrader_config = notes_blocks(release.notes)
    (service,) = run_hub_config(z2jh, release, monkeypatch).JupyterHub.services
    assert service == {
        'name': 'grader',
        'url': 'http://grading-grader.courses.svc.cluster.local:8000',
        'api_token': 'custom_token_c2FtcGxlLXRva2VuLWZvci10ZXN0cw',
        'oauth_no_confirm': True,
    }
    _, urls = run_nbgrader_config(nbgrader_config)
    assert urls == [
        'http://grading-grader.courses.svc.cluster.local:8000/jupyter/services/grader'
    ]
    assert 'ngshare.hub_api_token is not set' not in release.notes
    assert 'WARNING: debug mode is on' in release.notes


def test_notes_warn_without_admins():
    release = render('default', values={'ngshare': {'admins': []}})
    assert 'WARNING: ngshare.admins is empty' in release.notes


# --- The Hub API token is never printed ---------------------------------------


def kubectl_reads(command: str, release) -> str:
    """What ``kubectl get secret NAME --namespace NS -o jsonpath=... |
    base64 --decode`` prints, against the Secret the release would create."""
    get, decode = command.split(' | ')
    assert shlex.split(decode) == ['base64', '--decode']
    words = shlex.split(get)
    assert words[:3] == ['kubectl', 'get', 'secret']
    assert words[words.index('--namespace') + 1] == release.namespace
    assert words[3] == release.get('Secret')['metadata']['name']
    (path,) = re.fullmatch(r'jsonpath=\{\.data\.([\w-]+)\}', words[-1]).groups()
    return base64.b64decode(release.get('Secret')['data'][path]).decode()


@pytest.mark.parametrize(
    ('files', 'name', 'namespace'),
    [(['default'], 'ngshare', 'jhub'), (['custom'], 'grading', 'courses')],
)
def test_notes_print_how_to_read_the_token_not_the_token(files, name, namespace):
    release = render(*files, name=name, namespace=namespace)
    token = release.secret_data()['hub-api-token']
    assert token not in release.notes
    (command,) = [
        line for line in release.notes.splitlines() if line.startswith('kubectl ')
    ]
    assert "-o jsonpath='{.data.hub-api-token}'" in command
    assert kubectl_reads(command, release) == token
    # The Hub reads it from the Secret itself (Z2JH's hub.extraEnv).
    lines = release.notes.splitlines()
    start = lines.index('hub:')
    z2jh = yaml.safe_load('\n'.join(lines[start : lines.index('', start)]))
    ((variable, env),) = z2jh['hub']['extraEnv'].items()
    assert env == {
        'valueFrom': {
            'secretKeyRef': {
                'name': release.get('Secret')['metadata']['name'],
                'key': 'hub-api-token',
            }
        }
    }
    (code,) = z2jh['hub']['extraConfig'].values()
    assert f"'api_token': os.environ['{variable}']," in code


def test_notes_name_ngshares_own_plugin_with_a_versioned_install():
    notes = render('default').notes
    assert 'from ngshare.exchange import configureExchange' in notes
    assert (
        'python3 -m pip install "nbgrader>=0.9,<0.10" '
        '"ngshare[exchange]>=1.0.0.dev0"' in notes
    )
    assert 'ngshare_exchange' not in notes
    assert 'ngshare-exchange' not in notes


# --- The unpublished default image ---------------------------------------------


def test_notes_warn_while_the_image_is_the_unpublished_default():
    default = render(values={'ngshare': {'admins': ['a']}})
    assert default.container['image'].startswith('ngshare/ngshare:')
    assert IMAGE_WARNING in default.notes
    assert 'docker build -t REGISTRY/ngshare:' in default.notes
    assert '--set image.repository=REGISTRY/ngshare' in default.notes
    # A tag alone does not publish it.
    tagged = render(values={'image': {'tag': 'v1'}, 'ngshare': {'admins': ['a']}})
    assert IMAGE_WARNING in tagged.notes
    # The documented minimum names the image the administrator pushed.
    pushed = render('default')
    assert pushed.container['image'].startswith('registry.example.org/ngshare:')
    assert 'WARNING' not in pushed.notes


# --- Memory against the upload limits ------------------------------------------


def memory_warning(release) -> str | None:
    notes = release.notes
    return notes[notes.index(MEMORY_WARNING) :] if MEMORY_WARNING in notes else None


def needed_mib(release) -> int:
    match = re.search(
        r'Raise limits\.memory to (\d+)Mi or more', memory_warning(release)
    )
    return int(match.group(1))


def test_notes_warn_when_the_memory_limit_is_below_the_upload_limits():
    # The old "more complete" example: 256Mi with the default limits.
    old = render('default', values=with_memory('256Mi'))
    warning = memory_warning(old)
    assert warning.startswith(f'{MEMORY_WARNING} 256Mi, but uploads may need\n3508Mi')
    assert 'holds up to 1024Mi of request bodies at once' in warning
    assert 'lower ngshare.max_buffered_size' in warning
    # The boundary: the rule's figure is enough, one MiB less is not.
    assert memory_warning(render('default', values=with_memory('3508Mi'))) is None
    assert memory_warning(render('default', values=with_memory('3507Mi')))
    # Other spellings of a quantity are read (bytes, decimal units).
    assert memory_warning(render('default', values=with_memory(3678 * MIB))) is None
    assert memory_warning(render('default', values=with_memory('3.5G')))
    assert memory_warning(render('default', values=with_memory('4G'))) is None
    # Lower upload limits need less.
    small = with_memory('1Gi', max_body_size='256M', max_buffered_size='256M')
    assert memory_warning(render('default', values=small)) is None
    small['deployment']['resources']['limits']['memory'] = '900Mi'
    assert needed_mib(render('default', values=small)) == 973
    # max_buffered_size defaults to twice max_body_size, as in ngshare.
    body_only = with_memory('1Mi', max_body_size='100M')
    assert needed_mib(render('default', values=body_only)) == 128 + 660
    # No limit: nothing to warn about (and no OOM kill).
    assert memory_warning(render('default')) is None


def test_the_memory_rule_covers_the_tested_upload_budget():
    """The chart's factor per byte held is at least tests/test_big_files.py's
    budget per byte of files (4.4) over the smallest body per byte of files
    (base64: 4/3), and the figures follow ngshare's own defaults."""
    one = render('default', values=with_memory('1Mi', max_buffered_size='1000M'))
    two = render('default', values=with_memory('1Mi', max_buffered_size='2000M'))
    factor = (needed_mib(two) - needed_mib(one)) / 1000
    assert factor >= UPLOAD_FACTOR * 3 / 4 - 0.01
    config = started_config(render('default'))
    default = render('default', values=with_memory('1Mi'))
    assert needed_mib(default) == math.ceil(
        128 + factor * config.max_buffered_size / MIB
    )


def test_every_shipped_example_follows_the_memory_rule():
    for name in ('default', 'postgresql', 'custom', 's3'):
        assert memory_warning(render(name)) is None, name
    # The "more complete" config.yaml of docs/kubernetes.md.
    docs = (ROOT / 'docs' / 'kubernetes.md').read_text()
    after = docs[docs.index('A more complete one') :]
    example = yaml.safe_load(after.split('```yaml\n', 1)[1].split('```', 1)[0])
    assert example['deployment']['resources']['limits']['memory'] == '1Gi'
    release = render(values=example)
    assert memory_warning(release) is None
    assert started_config(release).max_buffered_size == 256 * MIB


def test_max_buffered_size_reaches_ngshare_and_must_hold_one_body():
    release = render('default', values={'ngshare': {'max_buffered_size': '768M'}})
    assert '--max-buffered-size=768M' in release.container['args']
    assert started_config(release).max_buffered_size == 768 * MIB
    with pytest.raises(HelmFailed) as failure:
        render('default', values={'ngshare': {'max_buffered_size': '256M'}})
    assert (
        'ngshare: ngshare.max_buffered_size must be at least ngshare.max_body_size'
        in failure.value.message
    )


# --- Refusals that say what to set ------------------------------------------------


@pytest.mark.parametrize(
    'token', ['short', "quote'in-the-token", 'with a space', 'back\\slash-token']
)
def test_a_bad_token_is_refused_with_a_sentence(token):
    # The schema no longer answers with its own pattern ...
    errors = jsonschema.Draft7Validator(SCHEMA).iter_errors(
        {'ngshare': {'hub_api_token': token}}
    )
    assert list(errors) == []
    # ... so the administrator reads the template's sentence.
    with pytest.raises(HelmFailed) as failure:
        render('default', values={'ngshare': {'hub_api_token': token}})
    assert failure.value.kind == 'HelmRenderError'
    assert TOKEN_MESSAGE in failure.value.message
    assert 'pattern' not in failure.value.message


def test_a_good_token_and_cookie_secret_are_accepted():
    release = render(
        'default',
        values={'ngshare': {'hub_api_token': 'a' * 8, 'cookie_secret': 'ab' * 32}},
    )
    assert started_config(release).hub_api_token == 'a' * 8


def test_a_bad_cookie_secret_is_refused_with_a_sentence():
    for secret in ('not-hex', 'ab' * 31):
        with pytest.raises(HelmFailed) as failure:
            render('default', values={'ngshare': {'cookie_secret': secret}})
        assert (
            'ngshare: ngshare.cookie_secret must be at least 64 hexadecimal digits'
            ' (32 bytes): generate one with openssl rand -hex 32'
            in failure.value.message
        )


@pytest.mark.parametrize(
    'url',
    [
        'postgresql://ngshare:pw@db.jhub.svc.cluster.local:5432/ngshare',
        'postgresql+psycopg://ngshare:pw@db.jhub.svc.cluster.local:5432/ngshare',
    ],
)
def test_postgresql_urls_ngshare_maps_to_psycopg_are_accepted(url):
    release = render('default', values={'database': {'url': url}})
    assert release.secret_data()['database-url'] == url
    config = started_config(release)
    # The command line reads it as PostgreSQL through psycopg 3, the driver
    # the image installs (ngshare[postgres]).
    database = make_url(config.database_url)
    assert database.get_backend_name() == 'postgresql'
    assert database.get_dialect().driver == 'psycopg'
    assert database.host == 'db.jhub.svc.cluster.local'
