"""The Helm chart's values schema, the Kubernetes API schemas, YAML lint
and the values' documentation.

The values are validated against values.schema.json both by ``jsonschema``
and by Helm (``_helm``, no cluster); the rendered manifests against the
Kubernetes API schemas (kubernetes-validate, strict: unknown fields fail)
for the oldest and newest Kubernetes; the YAML files and the manifests are
linted (yamllint, ``helmchart/.yamllint``) and the chart by ``helm lint
--strict``; docs/kubernetes.md describes every value.
"""

from __future__ import annotations

import json
import sys

import pytest

if sys.version_info < (3, 10):  # helm-python-sdk needs 3.10
    pytest.skip('helm-python-sdk needs Python 3.10', allow_module_level=True)

import jsonschema
import kubernetes_validate
import yaml
from _helm import CHART, CI_VALUES, ROOT, HelmFailed, ci_file, lint, render, validate
from _helm_releases import (
    CI_NAMES,
    DEFAULTS,
    SCHEMA,
    ci_releases,
)
from yamllint import linter
from yamllint.config import YamlLintConfig

YAMLLINT = YamlLintConfig(file=str(ROOT / 'helmchart' / '.yamllint'))
# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the
# newest kubernetes-validate knows.
KUBE_VERSIONS = ['1.25', kubernetes_validate.latest_version()]


@pytest.fixture(scope='module')
def releases():
    """The ci/ values files, rendered once for the module."""
    return ci_releases()


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
    # object storage and the service account
    ({'storage': {'s3': {'bucketName': 'files'}}}, "'bucketName'"),
    ({'storage': {'bucket': 'files'}}, "'bucket'"),
    ({'storage': {'s3': {'pathStyle': 'true'}}}, 'boolean'),
    ({'storage': {'s3': {'accessKeyIdKey': ''}}}, 'pattern'),
    ({'storage': {'s3': {'existingSecret': 'S3 Keys'}}}, 'pattern'),
    ({'serviceAccount': {'create': 'yes'}}, 'boolean'),
    ({'serviceAccount': {'name': 'Grader_SA'}}, 'pattern'),
    ({'serviceAccount': {'annotations': {'eks.amazonaws.com/role-arn': 1}}}, None),
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
    yield (
        'bucket-on-sqlite',
        render(
            'default',
            values={
                'storage': {'s3': {'bucket': 'files'}},
                'serviceAccount': {
                    'create': True,
                    'annotations': {
                        'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/n'
                    },
                },
            },
        ),
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
    assert len(paths) == 7
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


# --- Documentation --------------------------------------------------------------


def test_docs_describe_every_value():
    docs = (ROOT / 'docs' / 'kubernetes.md').read_text()

    def paths(schema, prefix=''):
        """Top-level values, and the values of each group (image, ngshare,
        deployment, database, storage.s3, serviceAccount, pvc); the maps
        within are described whole."""
        for key, sub in schema.get('properties', {}).items():
            if key == 'global':
                continue
            if prefix in ('', 'storage.') and 'properties' in sub:
                yield from paths(sub, f'{prefix}{key}.')
            else:
                yield prefix + key

    missing = [p for p in paths(SCHEMA) if f'`{p}`' not in docs]
    assert missing == []
    readme = (ROOT / 'README.md').read_text()
    assert 'docs/kubernetes.md' in readme
