"""What the Helm chart test modules share: the ci/ releases and the
fields they read.

``ci_releases()`` renders the values files under ``helmchart/ngshare/ci/``
(SQLite defaults; PostgreSQL with two replicas on a volume; every value
customised; two replicas on PostgreSQL and a bucket);
a module that reads them declares its own module-scoped ``releases``
fixture around it (four renders per module, each a fraction of a second,
and no fixture imported by name for linters to take for unused); the helpers
read a container's environment and the Deployment's pod spec the same way
in every module, so that a field's path is written once.
"""

from __future__ import annotations

import json

import yaml
from _helm import CHART, env_of, render

__all__ = [
    'CI_NAMES',
    'DEFAULTS',
    'POSTGRES_URL',
    'SCHEMA',
    'ci_releases',
    'env_values',
    'pod_spec',
    'secret_ref',
]

CI_NAMES = ['default', 'postgresql', 'custom', 's3']
SCHEMA = json.loads((CHART / 'values.schema.json').read_text())
DEFAULTS = yaml.safe_load((CHART / 'values.yaml').read_text())
POSTGRES_URL = (
    'postgresql+psycopg://ngshare:change-me@postgresql.jhub.svc.cluster.local'
    ':5432/ngshare'
)


def ci_releases() -> dict:
    """The ci/ values files, rendered (a module's ``releases``)."""
    return {
        'default': render('default'),
        'postgresql': render('postgresql'),
        'custom': render('custom', name='grading', namespace='courses'),
        's3': render('s3'),
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
