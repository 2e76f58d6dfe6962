"""How the S3 store reads the errors of boto3, without importing it.

A refusal of the store carries a code (``NoSuchBucket``, ``AccessDenied``,
``412``...) in ``error.response``; a store that did not answer raises one
of botocore's exceptions, told apart here by class name (so this module,
and a folder deployment, never import botocore). :func:`error_code` gives
both the same shape, for :class:`~.store.ObjectStoreFailure` and the
start-up line :func:`unusable`.
"""

from __future__ import annotations

import http.client

READ_TIMEOUT = 30  # seconds of silence from the store, per socket read

NOT_FOUND_CODES = frozenset({'404', 'NoSuchKey', 'NotFound'})
PRECONDITION_CODES = frozenset({'412', 'PreconditionFailed'})
# Another conditional write to the key is in flight (AWS): read what won.
CONFLICT_CODES = frozenset({'409', 'ConditionalRequestConflict'})
UNSUPPORTED_CODES = frozenset({'501', 'NotImplemented'})
CONNECTION_ERRORS = {
    'EndpointConnectionError': 'could not connect to the endpoint',
    'ConnectTimeoutError': 'timed out connecting to the endpoint',
    'ReadTimeoutError': f'no answer from the store within {READ_TIMEOUT} s',
    'ConnectionClosedError': 'the store closed the connection',
    'ResponseStreamingError': 'the store cut the object short',
    'IncompleteReadError': 'the store sent less than the object',
}


def _names(error: BaseException) -> set[str]:
    return {kind.__name__ for kind in type(error).__mro__}


def error_code(error: BaseException) -> tuple[str, str, int | None]:
    """(code, message, HTTP status) of a boto3 error, for messages."""
    response = getattr(error, 'response', None)
    cause = error.__cause__ or error.__context__
    if response is None and cause is not None and hasattr(cause, 'response'):
        return error_code(cause)  # s3transfer's S3UploadFailedError
    if isinstance(response, dict):
        details = response.get('Error', {})
        status = response.get('ResponseMetadata', {}).get('HTTPStatusCode')
        code = str(details.get('Code') or status or 'Error')
        message = details.get('Message') or ''
        if not message and code.isdigit():
            message = http.client.responses.get(int(code), '')
        return code, message or str(error), status
    name = type(error).__name__
    # botocore's text repeats the whole URL of the object; the line names
    # the endpoint and the blob anyway.
    return name, CONNECTION_ERRORS.get(name) or str(error), None


def unusable(error: BaseException, action: str, *, where: str, bucket: str) -> str:
    """The one start-up line for a probe (``action``) the store refused:
    what is wrong in the admin's terms (endpoint, credentials, bucket,
    permissions) and what to set."""
    code, message, _status = error_code(error)
    names = _names(error)
    if 'NoCredentialsError' in names:
        return (
            f'{where}: no credentials found: set AWS_ACCESS_KEY_ID and'
            ' AWS_SECRET_ACCESS_KEY, or give ngshare an IAM role or web identity'
        )
    if names & {'EndpointConnectionError', 'ConnectTimeoutError'}:
        how = 'timed out' if 'ConnectTimeoutError' in names else 'failed'
        return (
            f'{where}: cannot reach the object store (connecting {how}):'
            ' check the endpoint (--s3-endpoint-url or AWS_ENDPOINT_URL)'
            ' and the network'
        )
    if 'BotoCoreError' in names:
        return f'{where}: {message}'
    if code == 'NoSuchBucket':
        return (
            f'{where}: bucket {bucket!r} does not exist: create it,'
            ' or correct --storage'
        )
    if code in ('InvalidAccessKeyId', 'SignatureDoesNotMatch'):
        return (
            f'{where}: the credentials were refused ({code}): check'
            ' AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY'
        )
    if code in ('AccessDenied', '403', 'AllAccessDisabled'):
        return (
            f'{where}: not allowed to {action} objects under the prefix'
            f' ({code}: {message}): grant s3:PutObject, s3:GetObject,'
            ' s3:DeleteObject and s3:ListBucket on it'
        )
    return f'{where}: cannot {action} a probe object ({code}: {message})'


__all__ = [
    'CONFLICT_CODES',
    'NOT_FOUND_CODES',
    'PRECONDITION_CODES',
    'READ_TIMEOUT',
    'UNSUPPORTED_CODES',
    'error_code',
    'unusable',
]
