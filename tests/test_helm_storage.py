"""The Helm chart on object storage (issue 14): a bucket instead of a volume.

With ``storage.s3.bucket`` set the pod runs ngshare with ``--storage
s3://BUCKET/PREFIX`` (and the endpoint and path-style flags), the bucket's
region and keys in the standard AWS variables (the keys from a Secret), or
its identity from a service account; on PostgreSQL it mounts no volume and
the chart renders no claim, so any number of replicas need nothing else.
Rendered with Helm's own engine (``_helm``, no cluster), the container's
command line fed to ngshare's own parser and its environment to boto3's;
and once for real: the rendered command line and environment start ngshare
on a SeaweedFS bucket and a PostgreSQL database, and an upload lands in the
bucket. The refusals are the combinations that cannot work, each with the
value to set.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

if sys.version_info < (3, 10):  # helm-python-sdk needs 3.10
    pytest.skip('helm-python-sdk needs Python 3.10', allow_module_level=True)

from _api import files_of, ok, tree
from _helm import HelmFailed, env_of, pod_command, render, started_config
from _helm_releases import POSTGRES_URL, ci_releases, env_values, pod_spec, secret_ref
from _ports import free_port
from _servers import HUB_SERVICE_PREFIX, HUB_SERVICE_TOKEN, NgshareServer, ngshare_env

from ngshare.blobs.store import blob_key

BUCKET_URL = 's3://ngshare-files/jhub/ngshare'
ENDPOINT = 'http://seaweedfs-s3.storage.svc.cluster.local:8333'
KEYS = {'access-key-id': 'AKIDEXAMPLE', 'secret-access-key': 'wJalrXUtnFEMI/K7MDENG'}
SECRETS = {'ngshare-database': {'url': POSTGRES_URL}, 'ngshare-s3': KEYS}
AWS_VARIABLES = (
    'AWS_ENDPOINT_URL',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_REGION',
    'AWS_DEFAULT_REGION',
    'AWS_PROFILE',
    'AWS_ROLE_ARN',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
)


@pytest.fixture(scope='module')
def releases():
    """The ci/ values files, rendered once for the module."""
    return ci_releases()


def no_aws_of_ours(tmp_path) -> dict[str, str | None]:
    """Variables that keep a child's boto3 to what the pod has: none of
    this machine's AWS settings, files or instance metadata."""
    env: dict[str, str | None] = dict.fromkeys(AWS_VARIABLES)
    env.update(
        {
            'AWS_CONFIG_FILE': str(tmp_path / 'no-aws-config'),
            'AWS_SHARED_CREDENTIALS_FILE': str(tmp_path / 'no-aws-credentials'),
            'AWS_EC2_METADATA_DISABLED': 'true',
        }
    )
    return env


# --- Two replicas on PostgreSQL and a bucket ----------------------------------


def test_bucket_on_postgresql_needs_no_volume(releases):
    release = releases['s3']
    assert release.kinds() == ['Deployment', 'Secret', 'Service']
    spec = release.get('Deployment')['spec']
    assert spec['replicas'] == 2
    # Nothing any pod holds on to: new pods start before old ones stop.
    assert spec['strategy'] == {'type': 'RollingUpdate'}
    pod = pod_spec(release)
    assert 'volumes' not in pod
    container = release.container
    assert 'volumeMounts' not in container
    assert container['securityContext']['readOnlyRootFilesystem'] is True
    assert 'serviceAccountName' not in pod
    assert pod['automountServiceAccountToken'] is False

    assert container['args'][:5] == [
        '--admins=admin1',
        '--database=$(NGSHARE_DATABASE_URL)',
        f'--storage={BUCKET_URL}',
        f'--s3-endpoint-url={ENDPOINT}',
        '--s3-path-style',
    ]
    env = env_values(container)
    assert env['AWS_REGION'] == env['AWS_DEFAULT_REGION'] == 'us-east-1'
    assert 'AWS_ENDPOINT_URL' not in env  # the flag: only S3 goes there, not STS
    assert secret_ref(container, 'AWS_ACCESS_KEY_ID') == ('ngshare-s3', 'access-key-id')
    assert secret_ref(container, 'AWS_SECRET_ACCESS_KEY') == (
        'ngshare-s3',
        'secret-access-key',
    )
    assert secret_ref(container, 'NGSHARE_DATABASE_URL') == ('ngshare-database', 'url')
    # The keys stay in their Secret: the chart's holds only its own values.
    assert set(release.secret_data()) == {'hub-api-token', 'cookie-secret'}

    config = started_config(release, SECRETS)
    assert config.storage_path == BUCKET_URL
    assert config.s3_endpoint_url == ENDPOINT
    assert config.s3_path_style is True
    assert config.database_url == POSTGRES_URL
    assert config.cookie_secret == bytes.fromhex(release.secret_data()['cookie-secret'])

    assert (
        f'Uploaded files are kept in object storage, {BUCKET_URL} at {ENDPOINT} '
        '(no volume).'
    ) in release.notes
    assert 'NOTE: storage.s3.existingSecret' not in release.notes


def test_pod_environment_is_what_boto3_reads(releases, tmp_path):
    """boto3 itself, in a process with only the pod's environment, finds
    the region and the keys of the Secret."""
    _, env = pod_command(releases['s3'], SECRETS)
    child_env = {k: v for k, v in no_aws_of_ours(tmp_path).items() if v is not None}
    child_env.update(env)
    child_env['PATH'] = '/usr/bin:/bin'
    child_env['HOME'] = str(tmp_path)
    script = (
        'import json, boto3; s = boto3.session.Session(); '
        'c = s.get_credentials().get_frozen_credentials(); '
        'print(json.dumps([s.region_name, c.access_key, c.secret_key]))'
    )
    done = subprocess.run(
        [sys.executable, '-c', script],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout) == [
        'us-east-1',
        KEYS['access-key-id'],
        KEYS['secret-access-key'],
    ]


def test_prefix_endpoint_region_and_keys_are_optional():
    """AWS S3 with the pod's own identity: only --storage, no AWS variable,
    and the notes say where the credentials must then come from."""
    release = render(
        'postgresql',
        values={'storage': {'s3': {'bucket': 'files.example', 'prefix': ''}}},
    )
    assert 'PersistentVolumeClaim' not in release.kinds()
    container = release.container
    assert '--storage=s3://files.example' in container['args']
    assert not [a for a in container['args'] if a.startswith('--s3-')]
    assert not [name for name in env_of(container) if name.startswith('AWS_')]
    config = started_config(release)
    assert config.storage_path == 's3://files.example'
    assert config.s3_endpoint_url is None
    assert config.s3_path_style is False
    assert 'NOTE: storage.s3.existingSecret and serviceAccount are not set' in (
        release.notes
    )


def test_default_install_keeps_its_files_on_the_volume(releases):
    for name in ('default', 'postgresql', 'custom'):
        release = releases[name]
        container = release.container
        assert not [
            a for a in container['args'] if a.startswith(('--s3-', '--storage=s3'))
        ]
        assert not [v for v in env_of(container) if v.startswith('AWS_')]
        volumes = {v['name'] for v in pod_spec(release)['volumes']}
        assert volumes == {'data', 'tmp'}
    default = releases['default']
    assert 'ServiceAccount' not in default.kinds()
    assert 'serviceAccountName' not in pod_spec(default)
    assert started_config(default).storage_path == '/srv/ngshare/files/'
    assert (
        'Uploaded files are kept on the volume ngshare-pvc (files/).' in default.notes
    )


# --- Volumes beside a bucket --------------------------------------------------


def test_bucket_on_sqlite_keeps_a_volume_for_the_database():
    release = render('default', values={'storage': {'s3': {'bucket': 'files'}}})
    pvc = release.get('PersistentVolumeClaim')
    assert pvc['spec']['accessModes'] == ['ReadWriteOnce']
    volumes = {v['name']: v for v in pod_spec(release)['volumes']}
    assert volumes['data']['persistentVolumeClaim'] == {'claimName': 'ngshare-pvc'}
    assert release.get('Deployment')['spec']['strategy'] == {'type': 'Recreate'}
    config = started_config(release)
    assert config.database_url == 'sqlite:////srv/ngshare/ngshare.db'
    assert config.storage_path == 's3://files/ngshare'
    assert '(the volume ngshare-pvc is mounted too)' in release.notes


def test_existing_claim_stays_mounted_beside_a_bucket():
    """While the files are copied from the old claim to the bucket."""
    release = render(
        's3',
        values={
            'deployment': {'replicaCount': 1},
            'pvc': {'existingClaim': 'ngshare-pvc'},
        },
    )
    assert 'PersistentVolumeClaim' not in release.kinds()
    volumes = {v['name']: v for v in pod_spec(release)['volumes']}
    assert volumes['data']['persistentVolumeClaim'] == {'claimName': 'ngshare-pvc'}
    assert {'name': 'data', 'mountPath': '/srv/ngshare'} in (
        release.container['volumeMounts']
    )
    assert started_config(release, SECRETS).storage_path == BUCKET_URL


# --- The pods' service account ------------------------------------------------


def test_service_account_carries_the_cloud_identity():
    annotations = {
        'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/ngshare',
        'iam.gke.io/gcp-service-account': 'ngshare@project.iam.gserviceaccount.com',
    }
    release = render(
        's3',
        values={
            'storage': {'s3': {'existingSecret': ''}},
            'serviceAccount': {'create': True, 'annotations': annotations},
        },
    )
    account = release.get('ServiceAccount')
    assert account['metadata']['name'] == 'ngshare'
    assert account['metadata']['annotations'] == annotations
    assert account['metadata']['labels']['app.kubernetes.io/instance'] == 'ngshare'
    assert account['automountServiceAccountToken'] is False
    pod = pod_spec(release)
    assert pod['serviceAccountName'] == 'ngshare'
    env = env_of(release.container)
    assert 'AWS_ACCESS_KEY_ID' not in env and 'AWS_SECRET_ACCESS_KEY' not in env
    assert 'NOTE: storage.s3.existingSecret' not in release.notes

    existing = render(
        's3',
        values={'serviceAccount': {'name': 'ngshare-irsa', 'automountToken': True}},
    )
    assert 'ServiceAccount' not in existing.kinds()
    assert pod_spec(existing)['serviceAccountName'] == 'ngshare-irsa'
    assert pod_spec(existing)['automountServiceAccountToken'] is True


def test_custom_values_name_the_service_account(releases):
    release = releases['custom']
    account = release.get('ServiceAccount')
    assert account['metadata']['name'] == 'grader-exchange'
    assert account['metadata']['annotations'] == {'example.org/team': 'teaching'}
    assert pod_spec(release)['serviceAccountName'] == 'grader-exchange'


# --- Configurations the chart refuses -----------------------------------------

FOLDER_REPLICAS = (
    'ngshare: deployment.replicaCount is 2, but the files are on a volume and '
    'pvc.accessModes ["ReadWriteOnce"] has no ReadWriteMany: every replica mounts '
    'the same files. Keep the files in object storage instead (storage.s3.bucket: '
    'then no volume at all), or set pvc.accessModes to [ReadWriteMany] with a '
    'storage class that provides it (pvc.storageClassName), or run one replica.'
)
SQLITE_REPLICAS = 'replicas must never share one SQLite file'

REFUSED = [
    ('postgresql', {'pvc': {'accessModes': ['ReadWriteOnce']}}, FOLDER_REPLICAS),
    (
        's3',
        {'pvc': {'existingClaim': 'ngshare-pvc', 'accessModes': ['ReadWriteOnce']}},
        'remove pvc.existingClaim once the files are copied',
    ),
    ('s3', {'database': {'existingSecret': '', 'url': ''}}, SQLITE_REPLICAS),
    (
        's3',
        {'storage': {'s3': {'bucket': 's3://ngshare-files'}}},
        "takes the bucket's name only (e.g. my-bucket): put the key prefix in "
        'storage.s3.prefix',
    ),
    ('s3', {'storage': {'s3': {'bucket': 'NGshare'}}}, 'is not a bucket name: set it'),
    ('s3', {'storage': {'s3': {'bucket': 'ab'}}}, '3 to 63 lowercase letters'),
    ('s3', {'storage': {'s3': {'bucket': ' '}}}, '" " is not a bucket name'),
    (
        's3',
        {'storage': {'s3': {'prefix': '/jhub/ngshare/'}}},
        'storage.s3.prefix "/jhub/ngshare/" must not begin or end with a slash: '
        'write it as "jhub/ngshare"',
    ),
    ('s3', {'storage': {'s3': {'prefix': 'a//b'}}}, 'is not a usable key prefix'),
    ('s3', {'storage': {'s3': {'prefix': '../b'}}}, 'is not a usable key prefix'),
    (
        's3',
        {'storage': {'s3': {'endpointUrl': 'seaweedfs:8333'}}},
        'is not an http:// or https:// URL: set it to the store',
    ),
    ('s3', {'storage': {'s3': {'region': 'eu central'}}}, 'is not a region name'),
    (
        'postgresql',
        {'storage': {'s3': {'existingSecret': 'ngshare-s3'}}},
        'ngshare: storage.s3.existingSecret is set, but storage.s3.bucket is empty: '
        'set storage.s3.bucket to the name of the bucket',
    ),
    (
        'default',
        {'storage': {'s3': {'endpointUrl': ENDPOINT}}},
        'storage.s3.endpointUrl is set, but storage.s3.bucket is empty',
    ),
    (
        's3',
        {'serviceAccount': {'annotations': {'eks.amazonaws.com/role-arn': 'arn'}}},
        'serviceAccount.annotations are set, but serviceAccount.create is false',
    ),
]


@pytest.mark.parametrize(
    ('base', 'values', 'said'), REFUSED, ids=[json.dumps(v) for _, v, _ in REFUSED]
)
def test_unusable_storage_is_refused_with_what_to_set(base, values, said):
    with pytest.raises(HelmFailed) as failure:
        render(base, values=values)
    assert failure.value.kind == 'HelmRenderError'
    assert said in failure.value.message
    assert 'ngshare: ' in failure.value.message


@pytest.mark.parametrize(
    ('s3', 'storage'),
    [
        (
            {'bucket': 'my.bucket-1', 'prefix': 'courses/2026_spring/ngshare'},
            's3://my.bucket-1/courses/2026_spring/ngshare',
        ),
        (
            {'bucket': 'gcs_name', 'endpointUrl': 'https://storage.googleapis.com'},
            's3://gcs_name/jhub/ngshare',
        ),
        ({'bucket': 'abc', 'region': 'auto', 'prefix': ''}, 's3://abc'),
    ],
)
def test_usable_names_are_accepted(s3, storage):
    release = render('s3', values={'storage': {'s3': s3}})
    assert started_config(release, SECRETS).storage_path == storage


# --- For real: the rendered pod on a SeaweedFS bucket ----------------------------


def test_rendered_pod_serves_from_a_real_bucket(
    s3_server, s3_storage, postgres_url, hub, tmp_path
):
    """The container's args and environment as rendered (secrets put in
    place), only the Hub's and the listening address moved to loopback,
    start ngshare on the bucket; a release lands there under its sha256
    and comes back intact."""
    from _seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

    release = render(
        's3',
        values={
            'ngshare': {'hub_api_token': HUB_SERVICE_TOKEN, 'admins': ['root']},
            'storage': {
                's3': {
                    'bucket': s3_storage.bucket,
                    'prefix': s3_storage.prefix,
                    'endpointUrl': s3_server.endpoint,
                    'region': REGION,
                }
            },
        },
    )
    args, env = pod_command(
        release,
        {
            'ngshare-database': {'url': postgres_url},
            'ngshare-s3': {
                'access-key-id': ACCESS_KEY,
                'secret-access-key': SECRET_KEY,
            },
        },
    )
    port = free_port()
    env.update(
        JUPYTERHUB_SERVICE_URL=f'http://127.0.0.1:{port}',
        JUPYTERHUB_API_URL=hub.api_url,
    )
    child_env = no_aws_of_ours(tmp_path)
    # A dead loopback endpoint: only the chart's --s3-endpoint-url reaches
    # the store (and nothing ever leaves the machine).
    child_env['AWS_ENDPOINT_URL'] = f'http://127.0.0.1:{free_port()}'
    child_env.update(env)
    server = NgshareServer(
        command=[sys.executable, '-m', 'ngshare', *args],
        env=ngshare_env(child_env),
        workdir=tmp_path,
        port=port,
        prefix=HUB_SERVICE_PREFIX,
        hub_mode=True,
        hub=hub,
        debug=False,
        database_url=postgres_url,
        storage=tmp_path / 'unused',
    )
    try:
        content = b'{"cells": [], "metadata": {}, "nbformat": 4}'
        ok(
            server.post(
                ('course', 'course1'),
                user='root',
                data={'instructors': json.dumps(['kevin'])},
            )
        )
        ok(
            server.post(
                ('assignment', 'course1', 'ps1'),
                user='kevin',
                data={'files': tree({'ps1.ipynb': content})},
            )
        )
        assert s3_storage.keys() == [blob_key(content)]
        fetched = ok(server.get(('assignment', 'course1', 'ps1'), user='kevin'))
        assert files_of(fetched) == {'ps1.ipynb': content}
        assert not (tmp_path / 'unused').exists()
    finally:
        server.stop()
