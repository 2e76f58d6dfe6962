"""Reaching an S3-compatible bucket: its ``s3://`` location and the boto3
client, with the bounds every call of :class:`~.s3.S3Store` relies on.

The client is boto3's, configured once: credentials, region and endpoint
from boto3's own chain (``AWS_*`` variables, shared config, instance or pod
metadata; ngshare reads no variable itself), ``--s3-endpoint-url`` and
``--s3-path-style`` on top; timeouts and retries bounded so that an
unreachable store answers in bounded time. boto3 is imported here, on
first use, so a deployment on a folder never needs it.
"""

from __future__ import annotations

from typing import Any

from ..paths import is_legal_path
from .s3_errors import READ_TIMEOUT
from .store import StorageError

INSTALL_HINT = 'pip install "ngshare[s3]>=1.0.0.dev0"'
CONNECT_TIMEOUT = 5  # seconds per connection attempt
MAX_ATTEMPTS = 3  # one try and two retries (botocore's standard mode)
# Worker threads (8 by default) and downloads each hold a connection.
MAX_POOL_CONNECTIONS = 32
SCHEME = 's3://'


def parse_location(location: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` as (bucket, prefix without surrounding ``/``).

    A location without a bucket, or whose prefix is no legal relative path
    (``..``, empty segments), is refused with the one line start-up shows.
    """
    if not location.startswith(SCHEME):
        raise StorageError(f'storage {location!r} is not an s3://BUCKET/PREFIX URL')
    bucket, _, prefix = location[len(SCHEME) :].partition('/')
    prefix = prefix.strip('/')
    if not bucket:
        raise StorageError(
            f'storage {location!r} names no bucket: use s3://BUCKET/PREFIX'
        )
    if prefix and not is_legal_path(prefix):
        raise StorageError(
            f'storage {location!r}: the prefix {prefix!r} is not a plain path'
        )
    return bucket, prefix


def make_client(location: str, *, endpoint_url: str | None, path_style: bool):
    """(boto3 S3 client, whether it can send conditional PUTs).

    A client cannot be made (boto3 missing, a malformed endpoint, region or
    config file): :class:`StorageError`, the one line start-up shows.
    """
    try:
        import boto3
        import botocore.config
    except ImportError:
        raise StorageError(
            f'storage {location} needs boto3, which is not installed: {INSTALL_HINT}'
        ) from None
    options: dict[str, Any] = {
        'connect_timeout': CONNECT_TIMEOUT,
        'read_timeout': READ_TIMEOUT,
        'retries': {'mode': 'standard', 'total_max_attempts': MAX_ATTEMPTS},
        'max_pool_connections': MAX_POOL_CONNECTIONS,
        's3': {'addressing_style': 'path' if path_style else 'auto'},
        'user_agent_extra': 'ngshare',
    }
    if 'request_checksum_calculation' in botocore.config.Config.OPTION_DEFAULTS:
        # botocore >= 1.36: Content-MD5 (sent by S3Store.put) instead of its
        # CRC trailers, which several S3-compatible stores refuse.
        options['request_checksum_calculation'] = 'when_required'
        options['response_checksum_validation'] = 'when_required'
    try:
        session = boto3.session.Session()
        client = session.client(
            's3', endpoint_url=endpoint_url, config=botocore.config.Config(**options)
        )
    except Exception as error:  # a malformed endpoint, region, config file
        raise StorageError(f'cannot use object storage {location}: {error}') from None
    # boto3 < 1.35 cannot send If-None-Match: HEAD and a plain PUT then.
    put = client.meta.service_model.operation_model('PutObject')
    return client, 'IfNoneMatch' in put.input_shape.members
