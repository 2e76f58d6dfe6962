"""The Helm chart (helmchart/ngshare) and the image it runs (Dockerfile).

There is no cluster and no ``helm`` binary here: ``_helm`` renders the chart
with Helm's own engine (helm-python-sdk), for the values files under
``helmchart/ngshare/ci/`` and variations of them. The rendered manifests are
checked field by field, validated against the Kubernetes API schemas
(kubernetes-validate, strict: unknown fields fail) and linted (yamllint);
the values are validated against values.schema.json both by ``jsonschema``
and by Helm. The container's arguments and environment are fed to ngshare's
real command line (``ngshare.cli``) to show the pod would start as intended.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import string
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

if sys.version_info < (3, 10):  # helm-python-sdk needs 3.10
    pytest.skip('helm-python-sdk needs Python 3.10', allow_module_level=True)

import jsonschema
import kubernetes_validate
import yaml
from _helm import (
    CHART,
    CI_VALUES,
    ROOT,
    HelmFailed,
    ci_file,
    env_of,
    lint,
    render,
    started_config,
    validate,
)
from jupyterhub.services.service import Service
from traitlets.config import Config
from yamllint import linter
from yamllint.config import YamlLintConfig

from ngshare import config as ngshare_defaults
from ngshare.version import __version__

CI_NAMES = ['default', 'postgresql', 'custom']
SCHEMA = json.loads((CHART / 'values.schema.json').read_text())
DEFAULTS = yaml.safe_load((CHART / 'values.yaml').read_text())
YAMLLINT = YamlLintConfig(file=str(ROOT / 'helmchart' / '.yamllint'))
# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the
# newest kubernetes-validate knows.
KUBE_VERSIONS = ['1.25', kubernetes_validate.latest_version()]
POSTGRES_URL = (
    'postgresql+psycopg://ngshare:change-me@postgresql.jhub.svc.cluster.local'
    ':5432/ngshare'
)
SQLITE_REPLICAS_MESSAGE = (
    'ngshare: deployment.replicaCount is 2, but the database is SQLite: '
    'replicas must never share one SQLite file. Run one replica, or give a '
    'PostgreSQL database (database.url or database.existingSecret).'
)


@pytest.fixture(scope='module')
def releases():
    """The three ci/ values files, rendered once for the module."""
    return {
        'default': render('default'),
        'postgresql': render('postgresql'),
        'custom': render('custom', name='grading', namespace='courses'),
    }


def env_values(container: dict) -> dict[str, str]:
    return {
        name: item['value']
        for name, item in env_of(container).items()
        if 'value' in item
    }


def secret_ref(container: dict, name: str) -> tuple[str, str]:
    ref = env_of(container)[name]['valueFrom']['secretKeyRef']
    return ref['name'], ref['key']


def pod_spec(release) -> dict:
    return release.get('Deployment')['spec']['template']['spec']


# --- Chart metadata --------------------------------------------------------


def semver_of(version: str) -> str:
    match = re.fullmatch(r'(\d+\.\d+\.\d+)(?:\.?(dev|a|b|rc)(\d+))?', version)
    assert match, f'unexpected package version {version}'
    base, tag, number = match.groups()
    return base if tag is None else f'{base}-{tag}{number}'


def test_chart_metadata_follows_the_package_version():
    chart = yaml.safe_load((CHART / 'Chart.yaml').read_text())
    assert chart['apiVersion'] == 'v2'
    assert chart['name'] == 'ngshare' == CHART.name
    assert chart['appVersion'] == __version__
    assert chart['version'] == semver_of(__version__)


def test_image_tag_defaults_to_the_app_version(releases):
    assert DEFAULTS['image']['tag'] == ''
    assert releases['default'].container['image'] == (
        f'registry.example.org/ngshare:{__version__}'
    )
    assert render(values={'ngshare': {'admins': ['a']}}).container['image'] == (
        f'ngshare/ngshare:{__version__}'
    )
    custom = releases['custom'].container
    assert custom['image'] == 'registry.example.org/teaching/ngshare:1.0.0-custom'
    assert custom['imagePullPolicy'] == 'Always'
    assert pod_spec(releases['custom'])['imagePullSecrets'] == [
        {'name': 'registry-credentials'}
    ]


# --- Default install: SQLite, one replica -----------------------------------


def test_default_install_objects(releases):
    release = releases['default']
    assert release.kinds() == [
        'Deployment',
        'PersistentVolumeClaim',
        'Secret',
        'Service',
    ]
    for doc in release.manifests:
        labels = doc['metadata']['labels']
        assert labels['app.kubernetes.io/name'] == 'ngshare'
        assert labels['app.kubernetes.io/instance'] == 'ngshare'
        assert labels['app.kubernetes.io/version'] == __version__
        assert doc['metadata']['name'].startswith('ngshare')


def test_default_deployment(releases):
    release = releases['default']
    deployment = release.get('Deployment')
    spec = deployment['spec']
    assert spec['replicas'] == 1
    assert spec['strategy'] == {'type': 'Recreate'}
    pod = spec['template']
    assert pod['metadata']['labels'] == {
        'app.kubernetes.io/name': 'ngshare',
        'app.kubernetes.io/instance': 'ngshare',
        'hub.jupyter.org/network-access-hub': 'true',
    }
    assert spec['selector']['matchLabels'].items() <= pod['metadata']['labels'].items()
    assert pod['spec']['automountServiceAccountToken'] is False
    assert pod['spec']['securityContext']['runAsNonRoot'] is True
    assert pod['spec']['securityContext']['runAsUser'] == 1000
    assert pod['spec']['securityContext']['fsGroup'] == 1000
    for absent in ('nodeSelector', 'tolerations', 'affinity', 'imagePullSecrets'):
        assert absent not in pod['spec']

    container = release.container
    assert container['args'] == [
        '--admins=admin_username',
        '--max-body-size=512M',
        '--max-file-size=128M',
        '--deleted-retention-days=30',
        '--auth-cache-seconds=60',
    ]
    assert env_values(container) == {
        'JUPYTERHUB_SERVICE_NAME': 'ngshare',
        'JUPYTERHUB_SERVICE_PREFIX': '/services/ngshare/',
        'JUPYTERHUB_SERVICE_URL': 'http://0.0.0.0:8080',
        'JUPYTERHUB_API_URL': 'http://hub:8081/hub/api',
        'JUPYTERHUB_BASE_URL': '/',
        'JUPYTERHUB_CLIENT_ID': 'service-ngshare',
        'JUPYTERHUB_OAUTH_CALLBACK_URL': '/services/ngshare/oauth_callback',
    }
    assert secret_ref(container, 'JUPYTERHUB_API_TOKEN') == ('ngshare', 'hub-api-token')
    assert secret_ref(container, 'NGSHARE_COOKIE_SECRET') == (
        'ngshare',
        'cookie-secret',
    )
    assert 'NGSHARE_DATABASE_URL' not in env_of(container)
    assert container['ports'] == [
        {'name': 'http', 'containerPort': 8080, 'protocol': 'TCP'}
    ]
    assert 'resources' not in container
    assert container['securityContext']['readOnlyRootFilesystem'] is True
    assert container['securityContext']['allowPrivilegeEscalation'] is False
    assert container['securityContext']['capabilities'] == {'drop': ['ALL']}
    for probe in ('startupProbe', 'livenessProbe', 'readinessProbe'):
        assert container[probe]['httpGet'] == {
            'path': '/services/ngshare/healthz',
            'port': 'http',
        }
    assert container['startupProbe']['periodSeconds'] == 5
    assert container['startupProbe']['failureThreshold'] == 120
    assert container['livenessProbe']['failureThreshold'] == 3

    # The volume holds /srv/ngshare: ngshare's default database and storage.
    assert {'name': 'data', 'mountPath': '/srv/ngshare'} in container['volumeMounts']
    assert {'name': 'tmp', 'mountPath': '/tmp'} in container['volumeMounts']
    assert ngshare_defaults.DEFAULT_DATABASE == 'sqlite:////srv/ngshare/ngshare.db'
    assert ngshare_defaults.DEFAULT_STORAGE.startswith('/srv/ngshare/')
    volumes = {v['name']: v for v in pod['spec']['volumes']}
    assert volumes['data']['persistentVolumeClaim'] == {'claimName': 'ngshare-pvc'}


def test_default_service_pvc_and_secret(releases):
    release = releases['default']
    service = release.get('Service')
    assert service['metadata']['name'] == 'ngshare'
    assert service['spec']['type'] == 'ClusterIP'
    assert service['spec']['ports'] == [
        {'name': 'http', 'port': 8080, 'targetPort': 'http', 'protocol': 'TCP'}
    ]
    pod_labels = release.get('Deployment')['spec']['template']['metadata']['labels']
    assert service['spec']['selector'].items() <= pod_labels.items()

    pvc = release.get('PersistentVolumeClaim')
    assert pvc['metadata']['name'] == 'ngshare-pvc'
    assert pvc['metadata']['annotations'] == {'helm.sh/resource-policy': 'keep'}
    assert pvc['spec']['accessModes'] == ['ReadWriteOnce']
    assert pvc['spec']['resources'] == {'requests': {'storage': '1Gi'}}
    assert 'storageClassName' not in pvc['spec']

    secret = release.get('Secret')
    assert secret['metadata']['name'] == 'ngshare'
    assert secret['type'] == 'Opaque'
    data = release.secret_data()
    assert set(data) == {'hub-api-token', 'cookie-secret'}
    assert len(data['hub-api-token']) == 32
    assert set(data['hub-api-token']) <= set(string.ascii_letters + string.digits)
    assert re.fullmatch('[0-9a-f]{64}', data['cookie-secret'])


def test_default_pod_starts_ngshare_as_a_hub_service(releases):
    release = releases['default']
    config = started_config(release)
    secrets = release.secret_data()
    assert config.vngshare is False
    assert config.prefix == '/services/ngshare/'
    assert config.port == 8080
    assert config.host == '0.0.0.0'  # the pod's JUPYTERHUB_SERVICE_URL
    assert config.hub_api_url == 'http://hub:8081/hub/api'
    assert config.hub_api_token == secrets['hub-api-token']
    assert config.hub_prefix == '/hub/'
    assert config.service_name == 'ngshare'
    assert config.oauth_client_id == 'service-ngshare'
    assert config.oauth_redirect_uri == '/services/ngshare/oauth_callback'
    assert config.admins == frozenset({'admin_username'})
    assert config.debug is False
    assert config.upgrade_db is True
    assert config.metrics is False
    assert config.database_url == 'sqlite:////srv/ngshare/ngshare.db'
    assert config.storage_path == '/srv/ngshare/files/'
    assert config.max_body_size == 512 * 1024**2
    assert config.max_file_size == 128 * 1024**2
    assert config.deleted_retention_days == 30
    assert config.auth_cache_seconds == 60
    assert config.cookie_secret == bytes.fromhex(secrets['cookie-secret'])


def test_generated_secrets_differ_between_installs():
    first = render('default').secret_data()
    second = render('default').secret_data()
    assert first['hub-api-token'] != second['hub-api-token']
    assert first['cookie-secret'] != second['cookie-secret']


# --- PostgreSQL, two replicas -----------------------------------------------


def test_postgresql_two_replicas(releases):
    release = releases['postgresql']
    spec = release.get('Deployment')['spec']
    assert spec['replicas'] == 2
    assert spec['strategy'] == {'type': 'RollingUpdate'}
    container = release.container
    assert '--database=$(NGSHARE_DATABASE_URL)' in container['args']
    assert container['args'][0] == '--admins=admin1,admin2'
    assert secret_ref(container, 'NGSHARE_DATABASE_URL') == ('ngshare', 'database-url')
    assert container['resources'] == {
        'limits': {'cpu': '1', 'memory': '2Gi'},
        'requests': {'cpu': '100m', 'memory': '256Mi'},
    }
    data = release.secret_data()
    assert data == {
        'hub-api-token': 'demo_token_9wRp0h4BLzAnC88jjBfpH0fa4QV9tZNI',
        'cookie-secret': data['cookie-secret'],
        'database-url': POSTGRES_URL,
    }
    # Every replica mounts the same files: ReadWriteMany.
    pvc = release.get('PersistentVolumeClaim')
    assert pvc['spec']['accessModes'] == ['ReadWriteMany']
    assert pvc['spec']['resources']['requests']['storage'] == '5Gi'
    assert pvc['spec']['storageClassName'] == 'nfs-client'

    config = started_config(release)
    assert config.database_url == POSTGRES_URL
    assert config.admins == frozenset({'admin1', 'admin2'})
    assert config.hub_api_token == 'demo_token_9wRp0h4BLzAnC88jjBfpH0fa4QV9tZNI'
    # The replicas share one cookie secret, from the Secret.
    assert config.cookie_secret == bytes.fromhex(data['cookie-secret'])


def test_postgresql_from_an_existing_secret():
    release = render(
        'postgresql',
        values={
            'database': {
                'url': '',
                'existingSecret': 'pg-app',
                'existingSecretKey': 'uri',
            }
        },
    )
    container = release.container
    assert secret_ref(container, 'NGSHARE_DATABASE_URL') == ('pg-app', 'uri')
    assert '--database=$(NGSHARE_DATABASE_URL)' in container['args']
    assert 'database-url' not in release.secret_data()
    assert release.get('Deployment')['spec']['strategy'] == {'type': 'RollingUpdate'}
    config = started_config(release, {'pg-app': {'uri': POSTGRES_URL}})
    assert config.database_url == POSTGRES_URL


def test_rolling_update_only_when_every_pod_can_mount_the_volume():
    one = render('postgresql', values={'deployment': {'replicaCount': 1}})
    assert one.get('PersistentVolumeClaim')['spec']['accessModes'] == ['ReadWriteOnce']
    assert one.get('Deployment')['spec']['strategy'] == {'type': 'Recreate'}
    chosen = render(
        'postgresql',
        values={
            'deployment': {
                'strategy': {
                    'type': 'RollingUpdate',
                    'rollingUpdate': {'maxSurge': 0, 'maxUnavailable': 1},
                }
            }
        },
    )
    assert chosen.get('Deployment')['spec']['strategy'] == {
        'type': 'RollingUpdate',
        'rollingUpdate': {'maxSurge': 0, 'maxUnavailable': 1},
    }
    recreate = render(
        'postgresql', values={'deployment': {'strategy': {'type': 'Recreate'}}}
    )
    assert recreate.get('Deployment')['spec']['strategy'] == {'type': 'Recreate'}


# --- Configurations the chart refuses ---------------------------------------


def test_two_replicas_on_sqlite_are_refused():
    with pytest.raises(HelmFailed) as failure:
        render('default', values={'deployment': {'replicaCount': 2}})
    assert failure.value.kind == 'HelmRenderError'
    assert SQLITE_REPLICAS_MESSAGE in failure.value.message
    # Also with an explicit SQLite URL.
    with pytest.raises(HelmFailed, match='replicas must never share one SQLite file'):
        render(
            'default',
            values={
                'deployment': {'replicaCount': 3},
                'database': {'url': 'sqlite:////srv/ngshare/other.db'},
            },
        )


def test_rolling_update_on_sqlite_is_refused():
    with pytest.raises(HelmFailed) as failure:
        render(
            'default', values={'deployment': {'strategy': {'type': 'RollingUpdate'}}}
        )
    assert 'RollingUpdate needs a PostgreSQL database' in failure.value.message


def test_database_url_with_a_driver_the_image_lacks_is_refused():
    # postgresql:// is accepted (tests/test_helm_notes.py); these are not.
    for url, said in (
        ('postgres://u:p@db/ngshare', 'not postgres://'),
        ('postgresql+psycopg2://u:p@db/ngshare', 'it has psycopg 3'),
        ('postgresql+asyncpg://u:p@db/ngshare', 'it has psycopg 3'),
    ):
        with pytest.raises(HelmFailed, match=said):
            render('default', values={'database': {'url': url}})


def test_database_url_and_existing_secret_together_are_refused():
    with pytest.raises(HelmFailed, match='not both'):
        render('postgresql', values={'database': {'existingSecret': 'pg-app'}})


# --- Every value set ----------------------------------------------------------


def test_custom_values_reach_the_deployment(releases):
    release = releases['custom']
    deployment = release.get('Deployment')
    assert deployment['metadata']['name'] == 'grading-grader'
    spec = deployment['spec']
    assert spec['replicas'] == 1
    assert spec['strategy'] == {'type': 'Recreate'}
    pod = spec['template']
    assert pod['metadata']['labels'] == {
        'app.kubernetes.io/name': 'grader',
        'app.kubernetes.io/instance': 'grading',
        'hub.jupyter.org/network-access-hub': 'true',
        'team': 'teaching',
    }
    annotations = pod['metadata']['annotations']
    assert annotations['backup.example.org/volumes'] == 'data'
    assert re.fullmatch('[0-9a-f]{64}', annotations['checksum/secret'])
    custom = yaml.safe_load(ci_file('custom').read_text())['deployment']
    assert pod['spec']['nodeSelector'] == custom['nodeSelector']
    assert pod['spec']['tolerations'] == custom['tolerations']
    assert pod['spec']['affinity'] == custom['affinity']
    # Helm merges maps with the defaults (null removes a default key).
    assert pod['spec']['securityContext'] == {
        **DEFAULTS['deployment']['podSecurityContext'],
        **custom['podSecurityContext'],
    }
    assert pod['spec']['securityContext']['runAsUser'] == 2000

    container = release.container
    assert container['resources'] == custom['resources']
    assert container['securityContext'] == custom['securityContext']
    assert container['args'] == [
        '--admins=alice,bob',
        '--debug',
        '--no-upgrade-db',
        '--metrics',
        '--database=$(NGSHARE_DATABASE_URL)',
        '--max-body-size=2G',
        '--max-file-size=1073741824',
        '--max-buffered-size=2G',
        '--deleted-retention-days=0',
        '--auth-cache-seconds=10',
        '--storage=/srv/ngshare/files/',
    ]
    env = env_of(container)
    assert env['TZ'] == {'name': 'TZ', 'value': 'Europe/Zurich'}
    assert env['NODE_NAME']['valueFrom'] == {'fieldRef': {'fieldPath': 'spec.nodeName'}}
    assert env['JUPYTERHUB_SERVICE_PREFIX']['value'] == '/jupyter/services/grader/'
    assert secret_ref(container, 'NGSHARE_DATABASE_URL') == (
        'ngshare-database',
        'connection-url',
    )
    assert container['startupProbe'] == {
        'httpGet': {'path': '/jupyter/services/grader/healthz', 'port': 'http'},
        'periodSeconds': 10,
        'timeoutSeconds': 3,  # the default, merged
        'failureThreshold': 90,
    }
    assert container['livenessProbe'] == {
        'httpGet': {'path': '/jupyter/services/grader/healthz', 'port': 'http'},
        'initialDelaySeconds': 5,
        'periodSeconds': 20,
        'timeoutSeconds': 10,
        'failureThreshold': 5,
    }
    assert 'readinessProbe' not in container


def test_custom_values_reach_service_pvc_and_secret(releases):
    release = releases['custom']
    service = release.get('Service')
    assert service['metadata']['name'] == 'grading-grader'
    assert service['spec']['ports'][0]['port'] == 8000
    assert service['spec']['ports'][0]['targetPort'] == 'http'
    pvc = release.get('PersistentVolumeClaim')
    assert pvc['metadata']['name'] == 'grading-grader-pvc'
    assert pvc['metadata']['annotations'] == {'example.org/owner': 'teaching'}
    assert pvc['spec']['storageClassName'] == ''
    assert pvc['spec']['selector'] == {'matchLabels': {'purpose': 'ngshare'}}
    assert pvc['spec']['resources']['requests']['storage'] == '20Gi'
    assert release.secret_data() == {
        'hub-api-token': 'custom_token_c2FtcGxlLXRva2VuLWZvci10ZXN0cw',
        'cookie-secret': '00112233445566778899aabbccddeeff' * 2,
    }


def test_custom_pod_starts_ngshare_as_configured(releases):
    config = started_config(
        releases['custom'],
        {'ngshare-database': {'connection-url': POSTGRES_URL}},
    )
    assert config.prefix == '/jupyter/services/grader/'
    assert config.port == 8080
    assert config.service_name == 'grader'
    assert config.oauth_client_id == 'service-grader'
    assert config.oauth_redirect_uri == '/jupyter/services/grader/oauth_callback'
    assert config.hub_prefix == '/jupyter/hub/'
    assert (
        config.hub_api_url == 'http://hub.z2jh.svc.cluster.local:8081/jupyter/hub/api'
    )
    assert config.hub_api_token == 'custom_token_c2FtcGxlLXRva2VuLWZvci10ZXN0cw'
    assert config.admins == frozenset({'alice', 'bob'})
    assert config.debug is True
    assert config.upgrade_db is False
    assert config.metrics is True
    assert config.database_url == POSTGRES_URL
    assert config.max_body_size == 2 * 1024**3
    assert config.max_file_size == 1024**3
    assert config.max_buffered_size == 2 * 1024**3
    assert config.deleted_retention_days == 0
    assert config.auth_cache_seconds == 10
    assert config.cookie_secret == bytes.fromhex('00112233445566778899aabbccddeeff' * 2)


def test_extra_env_overrides_a_chart_variable():
    release = render(
        'default', values={'ngshare': {'env': {'JUPYTERHUB_API_URL': 'http://h/api'}}}
    )
    env = env_of(release.container)  # checks that no name is repeated
    assert env['JUPYTERHUB_API_URL'] == {
        'name': 'JUPYTERHUB_API_URL',
        'value': 'http://h/api',
    }


def test_existing_claim_and_names():
    release = render('default', values={'pvc': {'existingClaim': 'old-ngshare-pvc'}})
    assert 'PersistentVolumeClaim' not in release.kinds()
    volumes = {v['name']: v for v in pod_spec(release)['volumes']}
    assert volumes['data']['persistentVolumeClaim'] == {'claimName': 'old-ngshare-pvc'}
    named = render('default', name='courses', values={'fullnameOverride': 'exchange'})
    assert {doc['metadata']['name'] for doc in named.manifests} == {
        'exchange',
        'exchange-pvc',
    }
    assert render('default', name='courses').get('Service')['metadata']['name'] == (
        'courses-ngshare'
    )
    unkept = render('default', values={'pvc': {'keep': False}})
    assert 'annotations' not in unkept.get('PersistentVolumeClaim')['metadata']


def test_optional_flags_are_left_out():
    release = render(
        'default',
        values={
            'ngshare': {
                'admins': [],
                'max_body_size': '',
                'max_file_size': '',
                'deleted_retention_days': None,
                'auth_cache_seconds': None,
            }
        },
    )
    assert 'args' not in release.container
    config = started_config(release)
    assert config.admins == frozenset()
    assert config.max_body_size == ngshare_defaults.DEFAULT_MAX_BODY_SIZE
    assert config.deleted_retention_days == 30
    assert config.auth_cache_seconds == ngshare_defaults.DEFAULT_AUTH_CACHE_SECONDS


# --- Secrets kept across upgrades (lookup) ----------------------------------


def chart_in_a_cluster(tmp_path: Path, existing: dict[str, str]) -> Path:
    """A copy of the chart whose lookup finds a Secret with these keys."""
    chart = tmp_path / 'ngshare'
    shutil.copytree(CHART, chart)
    data = {key: base64.b64encode(v.encode()).decode() for key, v in existing.items()}
    (chart / 'templates' / '_cluster.tpl').write_text(
        '{{- define "ngshare.existingSecretData" -}}\n'
        f'{json.dumps(data)}\n'
        '{{- end }}\n'
    )
    return chart


def test_lookup_asks_for_the_charts_own_secret():
    text = (CHART / 'templates' / '_cluster.tpl').read_text()
    assert (
        'lookup "v1" "Secret" .Release.Namespace (include "ngshare.fullname" .)' in text
    )


def test_upgrade_keeps_the_generated_token_and_cookie_secret(tmp_path):
    kept = {
        'hub-api-token': 'KeptToken0123456789abcdefABCDEF0',
        'cookie-secret': 'ab' * 32,
    }
    chart = chart_in_a_cluster(tmp_path, kept)
    release = render('default', chart=chart)
    assert release.secret_data() == kept
    assert 'KeptToken0123456789abcdefABCDEF0' not in release.notes
    assert started_config(release).hub_api_token == kept['hub-api-token']
    # The pods are not restarted by an upgrade that changes nothing.
    checksum = 'checksum/secret'
    again = render('default', chart=chart)
    annotations = [
        r.get('Deployment')['spec']['template']['metadata']['annotations'][checksum]
        for r in (release, again)
    ]
    assert annotations[0] == annotations[1]


def test_values_override_what_the_cluster_has(tmp_path):
    chart = chart_in_a_cluster(
        tmp_path, {'hub-api-token': 'OldToken12345', 'cookie-secret': 'cd' * 32}
    )
    release = render(
        'default',
        chart=chart,
        values={'ngshare': {'hub_api_token': 'NewToken12345'}},
    )
    assert release.secret_data() == {
        'hub-api-token': 'NewToken12345',
        'cookie-secret': 'cd' * 32,
    }


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


# --- values.schema.json -----------------------------------------------------


def merged(*names: str, extra: dict | None = None) -> dict:
    def merge(base, more):
        for key, value in more.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    values = json.loads(json.dumps(DEFAULTS))
    for name in names:
        merge(values, yaml.safe_load(ci_file(name).read_text()))
    return merge(values, extra or {})


def test_schema_is_draft_07_and_accepts_the_shipped_values():
    assert SCHEMA['$schema'] == 'http://json-schema.org/draft-07/schema#'
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft7Validator(SCHEMA)
    validator.validate(DEFAULTS)
    for name in CI_NAMES:
        validator.validate(merged(name))
        validate(name)  # Helm's own validation agrees


def test_schema_covers_every_value():
    """Every value in values.yaml is described (no silent pass-through)."""

    def walk(values, schema, path):
        assert schema.get('additionalProperties') is False, path
        for key, value in values.items():
            assert key in schema['properties'], f'{path}{key}'
            sub = schema['properties'][key]
            if isinstance(value, dict) and sub.get('additionalProperties') is False:
                walk(value, sub, f'{path}{key}.')

    walk(DEFAULTS, SCHEMA, '')


BAD_VALUES = [
    # typos
    ({'ngshare': {'admin': ['alice']}}, "'admin'"),
    ({'deployment': {'replicas': 2}}, "'replicas'"),
    ({'pvc': {'size': '2Gi'}}, "'size'"),
    ({'ngshare_admins': ['alice']}, "'ngshare_admins'"),
    ({'deployment': {'livenessProbe': {'periodSecond': 3}}}, "'periodSecond'"),
    # wrong types and values
    ({'ngshare': {'admins': 'alice,bob'}}, 'array'),
    ({'ngshare': {'admins': ['alice,bob']}}, 'pattern'),
    ({'deployment': {'replicaCount': '2'}}, 'integer'),
    ({'ngshare': {'debug': 'yes'}}, 'boolean'),
    ({'pvc': {'storage': 1}}, 'string'),
    ({'ngshare': {'hub_api_token': 123456789}}, 'string'),
    ({'ngshare': {'max_buffered_size': 'lots'}}, None),
    ({'ngshare': {'max_body_size': '0'}}, None),
    ({'ngshare': {'max_file_size': 'lots'}}, None),
    ({'ngshare': {'hub_base_url': '/jupyter'}}, 'pattern'),
    ({'deployment': {'strategy': {'type': 'BlueGreen'}}}, None),
    ({'ngshare': {'env': {'TZ': 1}}}, None),
    ({'ngshare': {'args': [['--debug']]}}, 'string'),
    ({'ngshare': {'auth_cache_seconds': -1}}, 'minimum'),
    ({'ngshare': {'auth_cache_seconds': '60'}}, None),
]


@pytest.mark.parametrize(
    ('bad', 'said'), BAD_VALUES, ids=[str(b) for b, _ in BAD_VALUES]
)
def test_schema_rejects_typos_and_wrong_types(bad, said):
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(merged(extra=bad)))
    assert errors, f'jsonschema accepted {bad}'
    with pytest.raises(HelmFailed) as failure:
        render(values=bad)
    assert failure.value.kind == 'HelmValuesError'
    assert "values don't meet the specifications of the schema" in failure.value.message
    if said:
        assert said in failure.value.message


# --- Kubernetes schemas and YAML lint -----------------------------------------


def all_releases(releases):
    yield from releases.items()
    yield (
        'existing-secret',
        render('postgresql', values={'database': {'url': '', 'existingSecret': 'pg'}}),
    )


def test_manifests_are_valid_kubernetes_objects(releases):
    for label, release in all_releases(releases):
        for doc in release.manifests:
            for version in KUBE_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    pytest.fail(
                        f'{label}: {doc["kind"]} invalid for Kubernetes {version}: '
                        f'{error.message} at {list(error.path)}'
                    )


def yaml_problems(text: str) -> list[str]:
    return [str(problem) for problem in linter.run(text, YAMLLINT)]


def test_yaml_files_lint_clean():
    paths = [
        CHART / 'Chart.yaml',
        CHART / 'values.yaml',
        ROOT / 'helmchart' / '.yamllint',
        *sorted(CI_VALUES.glob('*.yaml')),
    ]
    assert len(paths) == 6
    for path in paths:
        assert yaml_problems(path.read_text()) == [], path


def test_rendered_manifests_lint_clean(releases):
    for label, release in all_releases(releases):
        for path, text in release.manifest_texts.items():
            assert yaml_problems(text) == [], f'{label}: {path}\n{text}'


def test_yamllint_config_catches_problems():
    """The config is in force: a duplicate key and a 'yes' are reported."""
    problems = yaml_problems('a: 1\na: 2\nb: yes\n')
    assert any('duplication of key "a"' in p for p in problems)
    assert any('truthy value' in p for p in problems)


@pytest.mark.parametrize('name', CI_NAMES)
def test_helm_lint_strict(name):
    report = lint(name)
    assert report['errors'] == []
    serious = [m for m in report['messages'] if m['severity'] >= 2]
    assert serious == []


# --- The image ------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / 'Dockerfile').read_text()
    text = re.sub(r'\\\n', ' ', text)
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            keyword, _, rest = line.partition(' ')
            instructions.append((keyword.upper(), ' '.join(rest.split())))
    return instructions


def test_dockerfile_builds_the_service_as_a_non_root_user():
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    assert instructions[0] == ('FROM', 'python:3.11-slim')
    assert keywords.count('FROM') == 1

    runs = [arg for k, arg in instructions if k == 'RUN']
    install = next(arg for arg in runs if 'pip install' in arg)
    assert re.search(r'pip install "[^"]*\[postgres\]"', install)
    assert 'useradd --system --uid 1000 --gid 1000' in ' '.join(runs)
    assert 'install -d -o 1000 -g 1000' in ' '.join(runs)
    assert '/srv/ngshare' in ' '.join(runs)

    users = [arg for k, arg in instructions if k == 'USER']
    assert users == ['1000:1000']  # numeric, so that runAsNonRoot can check it
    assert keywords.index('USER') > max(i for i, k in enumerate(keywords) if k == 'RUN')
    assert ('EXPOSE', '8080') in instructions
    env = ' '.join(arg for k, arg in instructions if k == 'ENV')
    assert 'JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8080' in env
    (entrypoint,) = [arg for k, arg in instructions if k == 'ENTRYPOINT']
    assert json.loads(entrypoint) == ['python', '-m', 'ngshare']
    assert 'CMD' not in keywords


def test_dockerfile_matches_the_chart(releases):
    """The chart runs what the image offers: user 1000, port 8080,
    /srv/ngshare, the entrypoint's arguments."""
    pod = pod_spec(releases['default'])
    assert pod['securityContext']['runAsUser'] == 1000
    assert pod['securityContext']['runAsGroup'] == 1000
    assert pod['securityContext']['fsGroup'] == 1000
    container = releases['default'].container
    assert 'command' not in container
    assert container['ports'][0]['containerPort'] == 8080
    env = env_values(container)
    assert env['JUPYTERHUB_SERVICE_URL'] == 'http://0.0.0.0:8080'


def test_entrypoint_module_runs():
    result = subprocess.run(
        [sys.executable, '-m', 'ngshare', '--version'],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == __version__


def dockerignore_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match, plus **), anchored at the
    context root."""
    out, i = '', 0
    while i < len(pattern):
        if pattern.startswith('**/', i):
            out, i = out + '(?:.*/)?', i + 3
        elif pattern.startswith('**', i):
            out, i = out + '.*', i + 2
        elif pattern[i] == '*':
            out, i = out + '[^/]*', i + 1
        elif pattern[i] == '?':
            out, i = out + '[^/]', i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def docker_context_files() -> list[Path]:
    """The files .dockerignore lets into the build context: the last
    matching rule decides; a rule matching a folder matches its content."""
    rules = []
    for line in (ROOT / '.dockerignore').read_text().splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            negate = line.startswith('!')
            rules.append((negate, dockerignore_regex(line.lstrip('!').strip('/'))))

    def included(relative: str) -> bool:
        parts = relative.split('/')
        prefixes = ['/'.join(parts[: i + 1]) for i in range(len(parts))]
        keep = True
        for negate, regex in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                keep = negate
        return keep

    def may_hold_included(top: str) -> bool:
        # A folder is walked if it is included or a negation may reach in.
        return included(top) or any(
            negate and regex.pattern.startswith(re.escape(top) + '/')
            for negate, regex in rules
        )

    files = []
    for top in ROOT.iterdir():
        if top.name == '.git' or not may_hold_included(top.name):
            continue
        for path in [top] if top.is_file() else top.rglob('*'):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and included(relative):
                files.append(path)
    return files


def test_image_context_builds_an_installable_package(tmp_path):
    """Copy what the Dockerfile copies (through .dockerignore) and build the
    wheel from it, offline: the package, its templates and migrations are
    all there."""
    context = {p.relative_to(ROOT).as_posix() for p in docker_context_files()}
    assert 'pyproject.toml' in context and 'README.md' in context
    assert 'ngshare/__main__.py' in context
    assert not any(
        p.startswith(('tests/', 'node_modules/', 'helmchart/')) for p in context
    )
    assert not any('__pycache__' in p for p in context)
    source = tmp_path / 'src'
    for relative in context:
        if relative in ('pyproject.toml', 'README.md') or relative.startswith(
            'ngshare/'
        ):
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, source / relative)
    subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'wheel',
            '--no-deps',
            '--no-build-isolation',
            '--no-index',
            '--quiet',
            '--wheel-dir',
            str(tmp_path / 'wheels'),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / 'wheels').glob('ngshare-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    assert f'ngshare-{__version__}.dist-info/METADATA' in names
    assert 'ngshare/__main__.py' in names
    assert any(n.startswith('ngshare/alembic/versions/') for n in names)
    assert any(n.startswith('ngshare/templates/') for n in names)
    metadata = zipfile.ZipFile(wheel).read(f'ngshare-{__version__}.dist-info/METADATA')
    assert b'Provides-Extra: postgres' in metadata


# --- Documentation --------------------------------------------------------------


def test_docs_describe_every_value():
    docs = (ROOT / 'docs' / 'kubernetes.md').read_text()

    def paths(schema, prefix=''):
        """Top-level values, and the values of each group (image, ngshare,
        deployment, database, pvc); the maps within are described whole."""
        for key, sub in schema.get('properties', {}).items():
            if key == 'global':
                continue
            if not prefix and 'properties' in sub:
                yield from paths(sub, f'{key}.')
            else:
                yield prefix + key

    missing = [p for p in paths(SCHEMA) if f'`{p}`' not in docs]
    assert missing == []
    readme = (ROOT / 'README.md').read_text()
    assert 'docs/kubernetes.md' in readme
