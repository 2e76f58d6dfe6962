"""The documented command line of ``python -m ngshare``, as an argparse parser.

Only the flags and how their values are read; :mod:`ngshare.cli` combines
them with the Hub's environment into a :class:`~ngshare.config.Config`.
"""

from __future__ import annotations

import argparse

from . import config as defaults
from .version import __version__

__all__ = [
    'add_s3_flags',
    'build_parser',
    'names',
    'parse_size',
    'port_number',
    'positive_seconds',
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ngshare',
        description='ngshare: the nbgrader exchange service for JupyterHub.',
    )
    regular = parser.add_argument_group('regular arguments')
    regular.add_argument(
        '--database',
        metavar='PATH_TO_DATABASE',
        help='SQLAlchemy database URL (default: '
        f'{defaults.DEFAULT_DATABASE}; with --vngshare {defaults.VNGSHARE_DATABASE})',
    )
    regular.add_argument(
        '--storage',
        metavar='PATH_TO_STORAGE',
        help='where uploaded files are kept: a folder, or s3://BUCKET/PREFIX '
        'for S3-compatible object storage (default: '
        f'{defaults.DEFAULT_STORAGE}; with --vngshare {defaults.VNGSHARE_STORAGE})',
    )
    regular.add_argument(
        '--admins',
        metavar='ADMIN1,ADMIN2,ADMIN3',
        default='',
        help='comma-separated user names of administrators',
    )
    advanced = parser.add_argument_group('advanced arguments')
    advanced.add_argument(
        '--debug',
        action='store_true',
        help='debug mode: detailed errors and debug actions; leaks private '
        'information, never use in production',
    )
    advanced.add_argument(
        '--no-upgrade-db',
        dest='upgrade_db',
        action='store_false',
        help='do not upgrade the database schema with Alembic at start-up',
    )
    advanced.add_argument(
        '--metrics',
        action='store_true',
        help='serve Prometheus metrics at PREFIX/metrics, to the --admins only '
        '(default: off, 404)',
    )
    advanced.add_argument(
        '--jupyterhub_api_url',
        metavar='CUSTOM_API_URL',
        help='JupyterHub API URL (default: $JUPYTERHUB_API_URL)',
    )
    advanced.add_argument(
        '--prefix',
        metavar='PREFIX',
        help='URL prefix, with a leading and trailing slash (default: '
        f'$JUPYTERHUB_SERVICE_PREFIX; with --vngshare {defaults.VNGSHARE_PREFIX})',
    )
    advanced.add_argument(
        '--vngshare',
        action='store_true',
        help='stand-alone mode: trust the "user" parameter, debug on; '
        'DO NOT USE IN PRODUCTION',
    )
    advanced.add_argument(
        '--host',
        metavar='BIND_HOST',
        default=None,
        help='address to bind (default: with --vngshare '
        f'{defaults.VNGSHARE_HOST}; as a service the host of '
        '$JUPYTERHUB_SERVICE_URL when it is an IP address or localhost, '
        'else every interface)',
    )
    advanced.add_argument(
        '--port',
        metavar='BIND_PORT',
        type=port_number,
        default=defaults.VNGSHARE_PORT,
        help=f'port to bind in vngshare mode (default: {defaults.VNGSHARE_PORT}); '
        'as a service the port of $JUPYTERHUB_SERVICE_URL is used',
    )
    limits = parser.add_argument_group('limits')
    limits.add_argument(
        '--max-body-size',
        metavar='SIZE',
        type=parse_size,
        default=defaults.DEFAULT_MAX_BODY_SIZE,
        help='largest request body, e.g. 512M or 2G; larger uploads are '
        'answered 413 and nothing is stored (default: 512M)',
    )
    limits.add_argument(
        '--max-file-size',
        metavar='SIZE',
        type=parse_size,
        default=defaults.DEFAULT_MAX_FILE_SIZE,
        help='largest single uploaded file, decoded, e.g. 100M (default: 128M)',
    )
    limits.add_argument(
        '--deleted-retention-days',
        metavar='DAYS',
        type=int,
        default=defaults.DEFAULT_DELETED_RETENTION_DAYS,
        help='days a deleted course or assignment (with its submissions) stays '
        'restorable with "ngshare-admin deleted restore"; 0 removes at once '
        f'(default: {defaults.DEFAULT_DELETED_RETENTION_DAYS})',
    )
    limits.add_argument(
        '--history-retention-days',
        metavar='DAYS',
        type=whole_days,
        default=defaults.DEFAULT_HISTORY_RETENTION_DAYS,
        help='days the history of exchange actions keeps an entry; older ones '
        'are removed hourly; 0 keeps them all (default: 0)',
    )
    limits.add_argument(
        '--released-blob-grace',
        metavar='SECONDS',
        type=whole_seconds,
        default=defaults.DEFAULT_RELEASED_BLOB_GRACE,
        help='seconds a file no longer referenced (replaced feedback, a purged '
        'item) stays in storage, so that downloads already under way complete; '
        f'0 removes at once (default: {defaults.DEFAULT_RELEASED_BLOB_GRACE})',
    )
    limits.add_argument(
        '--max-buffered-size',
        metavar='SIZE',
        type=parse_size,
        default=None,
        help='request bodies held in memory at once, all requests together; '
        'beyond it uploads are answered 503 until others finish (default: '
        'twice --max-body-size, 1G with its default)',
    )
    limits.add_argument(
        '--body-timeout',
        metavar='SECONDS',
        type=positive_seconds,
        default=defaults.DEFAULT_BODY_TIMEOUT,
        help='a request body must arrive within SECONDS plus one second per '
        '--min-body-rate bytes, else 408 and the connection is closed '
        f'(default: {defaults.DEFAULT_BODY_TIMEOUT:g})',
    )
    limits.add_argument(
        '--min-body-rate',
        metavar='BYTES',
        type=parse_size,
        default=defaults.DEFAULT_MIN_BODY_RATE,
        help='slowest accepted upload, bytes per second, after --body-timeout '
        f'(default: {defaults.DEFAULT_MIN_BODY_RATE})',
    )
    limits.add_argument(
        '--idle-timeout',
        metavar='SECONDS',
        type=positive_seconds,
        default=defaults.DEFAULT_IDLE_TIMEOUT,
        help='request headers must arrive within SECONDS, and a kept-alive '
        'connection idle that long is closed '
        f'(default: {defaults.DEFAULT_IDLE_TIMEOUT:g})',
    )
    limits.add_argument(
        '--download-cache-size',
        metavar='SIZE',
        type=size_or_zero,
        default=defaults.DEFAULT_DOWNLOAD_CACHE_SIZE,
        help='memory for the base64 texts of files sent lately, so that a '
        'release fetched by a whole class is encoded once; files over a '
        'quarter of it are not kept; 0 keeps none (default: 32M)',
    )
    hub = parser.add_argument_group('the Hub and its tokens')
    hub.add_argument(
        '--auth-cache-seconds',
        metavar='SECONDS',
        type=whole_seconds,
        default=defaults.DEFAULT_AUTH_CACHE_SECONDS,
        help="seconds the Hub's answer about a token is reused: a revoked "
        'token or deleted user is refused at most this long after '
        f'(default: {defaults.DEFAULT_AUTH_CACHE_SECONDS})',
    )
    hub.add_argument(
        '--hub-timeout',
        metavar='SECONDS',
        type=positive_seconds,
        default=defaults.DEFAULT_HUB_TIMEOUT,
        help='longest wait for the Hub to identify a token; then 503 '
        f'"Hub unavailable" (default: {defaults.DEFAULT_HUB_TIMEOUT:g})',
    )
    hub.add_argument(
        '--strict-token-scopes',
        action='store_true',
        help='accept only tokens with the scope access:services!service=<this '
        "service> (or access:services), not the users' own server tokens; "
        'see docs/security.md',
    )
    hub.add_argument(
        '--trusted-services',
        metavar='NAME1,NAME2',
        default='',
        help='comma-separated names of Hub services whose own tokens may call '
        'ngshare, each acting as a user of its name (default: none)',
    )
    hub.add_argument(
        '--trusted-proxies',
        metavar='IP1,IP2',
        default=','.join(defaults.DEFAULT_TRUSTED_PROXIES),
        help='peers whose X-Forwarded-For / X-Real-Ip headers name the client '
        'in the logs (default: ' + ','.join(defaults.DEFAULT_TRUSTED_PROXIES) + ')',
    )
    add_s3_flags(parser)
    parser.add_argument('--version', action='version', version=__version__)
    return parser


def add_s3_flags(parser: argparse.ArgumentParser) -> None:
    """The object-storage flags, shared by ``python -m ngshare`` and
    ``ngshare-admin`` so that both reach a bucket the same way.

    Only what an admin cannot say through boto3's own configuration: the
    credentials, the region and (without the flag) the endpoint come from
    boto3's chain (``AWS_*`` variables, shared config files, a pod's IAM
    role or web identity), which ngshare never reads itself.
    """
    group = parser.add_argument_group(
        'object storage (with --storage s3://BUCKET/PREFIX)'
    )
    group.add_argument(
        '--s3-endpoint-url',
        metavar='URL',
        dest='s3_endpoint_url',
        default=None,
        help='URL of an S3-compatible store other than AWS, e.g. '
        'https://storage.googleapis.com or http://seaweedfs:8333 '
        '(default: $AWS_ENDPOINT_URL, else AWS S3)',
    )
    group.add_argument(
        '--s3-path-style',
        dest='s3_path_style',
        action='store_true',
        help='address the bucket in the path (http://host/BUCKET/KEY) rather '
        'than in the host name, as in-cluster stores (SeaweedFS, Ceph, MinIO) '
        'usually need',
    )


_SIZE_UNITS = {'': 1, 'K': 1024, 'M': 1024**2, 'G': 1024**3}


def positive_seconds(text: str) -> float:
    """A positive number of seconds, such as ``5`` or ``0.5``."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f'not a number of seconds: {text!r}')
    return value


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535.

    Refused rather than passed on: the resolver wraps a larger number
    modulo 65536 (99999 becomes 34463, 65536 becomes 0) and port 0 binds
    some free port, so a typo would leave the service listening where
    nobody looks.
    """
    text = str(text).strip()
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f'not a port (1-65535): {text!r}')
    return int(text)


def whole_number_of(unit: str):
    """The argparse type of a whole number of ``unit``, 0 or more."""

    def whole(text: str) -> int:
        if not text.strip().isdigit():
            raise argparse.ArgumentTypeError(f'not a whole number of {unit}: {text!r}')
        return int(text)

    return whole


whole_seconds = whole_number_of('seconds')
whole_days = whole_number_of('days')


def names(text: str) -> frozenset[str]:
    """A comma-separated list of names, empty entries left out."""
    return frozenset(name.strip() for name in text.split(',') if name.strip())


def size_or_zero(text: str) -> int:
    """A size as :func:`parse_size` reads it, or ``0`` (none)."""
    if text.strip() == '0':
        return 0
    return parse_size(text)


def parse_size(text: str) -> int:
    """A byte count such as ``1048576``, ``512K``, ``100M`` or ``2G``."""
    value = text.strip().upper().removesuffix('B').removesuffix('I')
    unit = value[-1:] if value[-1:] in _SIZE_UNITS else ''
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) <= 0:
        raise argparse.ArgumentTypeError(f'not a size: {text!r}')
    return int(number) * _SIZE_UNITS[unit]
