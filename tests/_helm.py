"""Render the Helm chart with Helm's own template engine, without a cluster.

``helm-python-sdk`` (a test dependency) binds Helm's Go SDK: the same
template engine, Sprig functions, ``fail``, ``lookup`` (empty without a
cluster), NOTES.txt rendering, values coalescing and ``values.schema.json``
validation as ``helm install``. It runs in a child process, one per call, so
that the Go runtime it loads never shares a process with the test servers.
``started_config`` feeds a rendered container's arguments and environment
to ngshare's real command line, to show what the pod would start with.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from ngshare import cli

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / 'helmchart' / 'ngshare'
CI_VALUES = CHART / 'ci'

# Runs in the child: reads one request (JSON) on stdin, answers on stdout.
_CHILD = r"""
import json, sys
import helm_python as helm

def merge(base, extra):
    # helm -f a.yaml -f b.yaml: maps merge key by key, the rest is replaced.
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base

request = json.load(sys.stdin)
values = {}
for path in request['files']:
    with open(path, encoding='utf-8') as stream:
        merge(values, helm.values_from_yaml(stream.read()))
merge(values, request['values'])
try:
    if request['op'] == 'lint':
        answer = {'lint': helm.lint(request['chart'], values, strict=True,
                                    namespace=request['namespace'])}
    else:
        with helm.Chart.load(request['chart']) as chart:
            if request['op'] == 'validate':
                chart.validate_schema(values)
                answer = {'values': chart.merge_values(values)}
            else:
                answer = {
                    'files': chart.render(values, name=request['name'],
                                          namespace=request['namespace'],
                                          is_install=True),
                    'values': chart.merge_values(values),
                }
except helm.HelmError as error:
    answer = {'error': type(error).__name__, 'message': str(error)}
json.dump(answer, sys.stdout)
"""


class HelmFailed(Exception):
    """Helm refused: invalid values (schema) or a template's ``fail``."""

    def __init__(self, kind: str, message: str):
        super().__init__(f'{kind}: {message}')
        self.kind = kind
        self.message = message


@dataclasses.dataclass
class Release:
    """What an install would send to the cluster and print."""

    name: str
    namespace: str
    files: dict[str, str]  # 'templates/x.yaml' -> rendered text
    values: dict  # the coalesced values the templates saw

    @property
    def notes(self) -> str:
        return self.files['templates/NOTES.txt']

    @property
    def manifest_texts(self) -> dict[str, str]:
        return {
            path: text
            for path, text in self.files.items()
            if path.endswith('.yaml') and text.strip()
        }

    @property
    def manifests(self) -> list[dict]:
        documents = []
        for text in self.manifest_texts.values():
            documents.extend(doc for doc in yaml.safe_load_all(text) if doc)
        return documents

    def get(self, kind: str) -> dict:
        found = [doc for doc in self.manifests if doc['kind'] == kind]
        assert len(found) == 1, f'{len(found)} {kind} manifests'
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(doc['kind'] for doc in self.manifests)

    def secret_data(self) -> dict[str, str]:
        data = self.get('Secret')['data']
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    @property
    def container(self) -> dict:
        (container,) = self.get('Deployment')['spec']['template']['spec']['containers']
        return container


def ci_file(name: str) -> Path:
    return CI_VALUES / f'{name}-values.yaml'


def _run(request: dict) -> dict:
    process = subprocess.run(
        [sys.executable, '-c', _CHILD],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f'helm child failed:\n{process.stderr}')
    answer = json.loads(process.stdout)
    if 'error' in answer:
        raise HelmFailed(answer['error'], answer['message'])
    return answer


def _request(op, files, values, chart, name, namespace):
    return {
        'op': op,
        'chart': str(chart),
        'files': [str(ci_file(f) if isinstance(f, str) else f) for f in files],
        'values': values or {},
        'name': name,
        'namespace': namespace,
    }


def render(
    *files: str | Path,
    values: dict | None = None,
    name: str = 'ngshare',
    namespace: str = 'jhub',
    chart: Path = CHART,
) -> Release:
    """``helm install NAME CHART -n NAMESPACE -f FILES... --set VALUES``,
    rendered only. A ``str`` file names ``ci/<str>-values.yaml``."""
    answer = _run(_request('render', files, values, chart, name, namespace))
    files_out = {path.split('/', 1)[1]: text for path, text in answer['files'].items()}
    return Release(name, namespace, files_out, answer['values'])


def validate(*files: str | Path, values: dict | None = None) -> dict:
    """Helm's own check of the values against values.schema.json."""
    answer = _run(_request('validate', files, values, CHART, 'ngshare', 'jhub'))
    return answer['values']


def lint(*files: str | Path, values: dict | None = None) -> dict:
    """``helm lint --strict`` with the given values."""
    return _run(_request('lint', files, values, CHART, 'ngshare', 'jhub'))['lint']


# --- What a rendered pod would start -----------------------------------------


def env_of(container: dict) -> dict[str, dict]:
    names = [item['name'] for item in container['env']]
    assert len(names) == len(set(names)), f'duplicate variables: {names}'
    return {item['name']: item for item in container['env']}


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in a container's args."""
    return re.sub(
        r'\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)',
        lambda m: '$' if m.group(0) == '$$' else env.get(m.group(1), m.group(0)),
        text,
    )


def pod_command(release, other_secrets=None) -> tuple[list[str], dict[str, str]]:
    """What the rendered container runs: the arguments of ``python -m
    ngshare`` (the image's ENTRYPOINT) and its environment, with the values
    of the chart's Secret and of ``other_secrets`` ({name: {key: value}})
    put in place as Kubernetes does."""
    container = release.container
    secrets = {release.get('Secret')['metadata']['name']: release.secret_data()}
    secrets.update(other_secrets or {})
    env = {}
    for name, item in env_of(container).items():
        if 'value' in item:
            env[name] = item['value']
        elif 'secretKeyRef' in item['valueFrom']:
            ref = item['valueFrom']['secretKeyRef']
            env[name] = secrets[ref['name']][ref['key']]
    assert 'command' not in container  # the image's ENTRYPOINT: python -m ngshare
    args = [expand(arg, env) for arg in container.get('args', [])]
    return args, env


def started_config(release, other_secrets=None) -> cli.Config:
    """The ngshare Config the rendered container would start with: its
    args and env (secrets resolved) through ngshare's own command line."""
    args, env = pod_command(release, other_secrets)
    return cli.config_from(cli.build_parser().parse_args(args), env)
