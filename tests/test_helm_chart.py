"""The Helm chart (helmchart/ngshare): the objects it renders, and the
configurations it refuses.

There is no cluster and no ``helm`` binary here: ``_helm`` renders the chart
with Helm's own engine (helm-python-sdk), for the values files under
``helmchart/ngshare/ci/`` and variations of them. The rendered manifests are
checked field by field, and the container's arguments and environment are
fed to ngshare's real command line (``ngshare.cli``) to show the pod would
start as intended. The other subjects have their own modules:
test_helm_values.py (every value set, secrets kept across upgrades),
test_helm_notes.py (what the install notes print and warn about),
test_helm_schema.py (values.schema.json, Kubernetes API schemas, YAML lint,
the values' documentation), test_helm_image.py (the Dockerfile).
"""

from __future__ import annotations

import re
import string
import sys

import pytest

if sys.version_info < (3, 10):  # helm-python-sdk needs 3.10
    pytest.skip('helm-python-sdk needs Python 3.10', allow_module_level=True)

import yaml
from _helm import CHART, HelmFailed, env_of, render, started_config
from _helm_releases import (
    DEFAULTS,
    POSTGRES_URL,
    ci_releases,
    env_values,
    pod_spec,
    secret_ref,
)

from ngshare import config as ngshare_defaults
from ngshare.version import __version__

SQLITE_REPLICAS_MESSAGE = (
    'ngshare: deployment.replicaCount is 2, but the database is SQLite: '
    'replicas must never share one SQLite file. Run one replica, or give a '
    'PostgreSQL database (database.url or database.existingSecret).'
)


@pytest.fixture(scope='module')
def releases():
    """The ci/ values files, rendered once for the module."""
    return ci_releases()


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
    assert config.history_retention_days == 0  # the history keeps everything
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
