"""The Helm chart with every value set, and the secrets it keeps across
upgrades (its one ``lookup``).

Rendered with Helm's own engine (``_helm``, no cluster), as in
tests/test_helm_chart.py: the ``custom`` values file sets every value, and
each must reach the Deployment, Service, claim or Secret and the command
line ngshare would start with. ``chart_in_a_cluster`` replaces
``templates/_cluster.tpl`` to stand in for a cluster that holds the
Secret of an earlier install.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 10):  # helm-python-sdk needs 3.10
    pytest.skip('helm-python-sdk needs Python 3.10', allow_module_level=True)

import yaml
from _helm import CHART, ci_file, env_of, render, started_config
from _helm_releases import (
    DEFAULTS,
    POSTGRES_URL,
    ci_releases,
    pod_spec,
    secret_ref,
)

from ngshare import config as ngshare_defaults


@pytest.fixture(scope='module')
def releases():
    """The ci/ values files, rendered once for the module."""
    return ci_releases()


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
        '--history-retention-days=365',
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
    assert config.history_retention_days == 365
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
