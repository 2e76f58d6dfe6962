"""``python -m ngshare``: the documented command line, and running.

This is the only module that reads the environment: the flags documented in
"Command Line Arguments" and the variables JupyterHub sets for a managed
service become one :class:`~ngshare.config.Config`. Everything that can be
checked without the disk is checked here, first (started without the Hub's
environment, ngshare touches nothing); :mod:`ngshare.startup` then prepares
storage, database and sockets, and serves until a signal. A configuration
that cannot work stops start-up with a single ``ngshare: error:`` line and
no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys
from urllib.parse import urlparse

from sqlalchemy.exc import ArgumentError

from . import config as defaults
from .blobs import is_s3_location
from .config import COOKIE_SECRET_NAME, Config
from .database.urls import DatabaseURLError, check_database_url, sqlite_file
from .flags import build_parser, names, parse_size, port_number
from .server import parse_networks
from .startup import (
    StartupError,
    UsageError,
    build_runtime,
    load_cookie_secret,
    prepare_database,
    serve,
)

# build_parser and parse_size are ngshare.flags', build_runtime and the
# others ngshare.startup's, COOKIE_SECRET_NAME ngshare.config's, kept
# importable from here.
__all__ = [
    'COOKIE_SECRET_NAME',
    'Config',
    'StartupError',
    'build_parser',
    'build_runtime',
    'config_from',
    'load_cookie_secret',
    'main',
    'parse_size',
    'prepare_database',
    'serve',
]

log = logging.getLogger('ngshare')


def check_hub_environment(args: argparse.Namespace, environ: dict[str, str]) -> None:
    """Refuse to run as a Hub service outside the Hub's environment.

    Checked before anything else: started by hand, without the variables
    JupyterHub gives its services, ngshare would otherwise create its
    folders and migrate a database, then fail on the empty token (the Hub's
    OAuth client needs it). The line says what is missing and the three
    ways to start it that work.
    """
    if args.vngshare or environ.get('JUPYTERHUB_API_TOKEN'):
        return
    missing = ['JUPYTERHUB_API_TOKEN']
    if not (args.jupyterhub_api_url or environ.get('JUPYTERHUB_API_URL')):
        missing.append('JUPYTERHUB_API_URL')
    raise UsageError(
        ' and '.join(missing)
        + (' is' if len(missing) == 1 else ' are')
        + ' not set, so this is not a JupyterHub service: run ngshare as a'
        ' service of JupyterHub, which sets them (docs/jupyterhub.md); or set'
        ' JUPYTERHUB_API_TOKEN and pass --jupyterhub_api_url for an unmanaged'
        ' service (docs/unmanaged.md); or add --vngshare for a stand-alone'
        ' development server'
    )


def service_url_address(service_url: str) -> tuple[str, int]:
    """Host to bind and port of ``$JUPYTERHUB_SERVICE_URL``.

    The port is checked as ``--port`` is: ``urlparse`` accepts 0 (and the
    resolver would wrap 99999), which would bind some other port than the
    one the Hub's proxy sends requests to.
    """
    try:
        parsed = urlparse(service_url)
        hostname = parsed.hostname
        hostport = parsed.netloc.rpartition('@')[2]
        text = hostport.rpartition(']')[2].rpartition(':')[2] if ':' in hostport else ''
        port = port_number(text) if text else 80
    except (ValueError, argparse.ArgumentTypeError) as error:
        raise UsageError(f'JUPYTERHUB_SERVICE_URL {service_url!r}: {error}') from None
    return bind_host(hostname), port


def config_from(args: argparse.Namespace, environ: dict[str, str]) -> Config:
    """Combine the flags and the Hub's environment into one Config.

    Only reads: every check that needs no disk or network is made here,
    before :func:`serve` creates a folder or opens the database (``main``
    has checked the Hub's environment with :func:`check_hub_environment`).
    """
    prefix = (
        args.prefix
        if args.prefix is not None
        else (
            defaults.VNGSHARE_PREFIX
            if args.vngshare
            else environ.get('JUPYTERHUB_SERVICE_PREFIX', '/services/ngshare/')
        )
    )
    if not (prefix.startswith('/') and prefix.endswith('/')):
        raise StartupError(f'--prefix must start and end with "/", got {prefix!r}')
    hub_api_url = args.jupyterhub_api_url or environ.get('JUPYTERHUB_API_URL')
    if args.vngshare:
        host, port = args.host or defaults.VNGSHARE_HOST, args.port
    else:
        host, port = '', 10101
        hub_api_url = hub_api_url or 'http://127.0.0.1:8081/hub/api'
        service_url = environ.get('JUPYTERHUB_SERVICE_URL')
        if service_url:
            host, port = service_url_address(service_url)
        if args.host is not None:
            host = args.host
    service_name = environ.get('JUPYTERHUB_SERVICE_NAME', 'ngshare')
    hub_base = environ.get('JUPYTERHUB_BASE_URL', '/')
    database = args.database or (
        defaults.VNGSHARE_DATABASE if args.vngshare else defaults.DEFAULT_DATABASE
    )
    try:
        database = check_database_url(database)
    except DatabaseURLError as error:
        raise StartupError(str(error)) from None
    storage = args.storage or (
        defaults.VNGSHARE_STORAGE if args.vngshare else defaults.DEFAULT_STORAGE
    )
    max_buffered_size = args.max_buffered_size or (
        defaults.BUFFERED_BODIES * args.max_body_size
    )
    if max_buffered_size < args.max_body_size:
        raise StartupError(
            '--max-buffered-size must be at least --max-body-size, or uploads '
            'larger than it would always be refused'
        )
    trusted_proxies = names(args.trusted_proxies)
    try:
        parse_networks(trusted_proxies)
    except ValueError as error:
        raise StartupError(f'--trusted-proxies: {error}') from None
    secret = environ.get('NGSHARE_COOKIE_SECRET', '')
    try:
        cookie_secret = bytes.fromhex(secret)
    except ValueError:
        raise StartupError('NGSHARE_COOKIE_SECRET must be hexadecimal') from None
    return Config(
        database_url=database,
        storage_path=storage,
        s3_endpoint_url=args.s3_endpoint_url,
        s3_path_style=args.s3_path_style,
        admins=names(args.admins),
        debug=args.debug or args.vngshare,
        upgrade_db=args.upgrade_db,
        vngshare=args.vngshare,
        prefix=prefix,
        host=host,
        port=port,
        hub_api_url=hub_api_url,
        hub_api_token=environ.get('JUPYTERHUB_API_TOKEN', ''),
        hub_prefix=hub_base.rstrip('/') + '/hub/',
        hub_host=environ.get('JUPYTERHUB_HOST', ''),
        service_name=service_name,
        oauth_client_id=environ.get('JUPYTERHUB_CLIENT_ID', f'service-{service_name}'),
        oauth_redirect_uri=environ.get(
            'JUPYTERHUB_OAUTH_CALLBACK_URL', prefix + 'oauth_callback'
        ),
        max_body_size=args.max_body_size,
        max_file_size=args.max_file_size,
        deleted_retention_days=args.deleted_retention_days,
        history_retention_days=args.history_retention_days,
        released_blob_grace_seconds=args.released_blob_grace,
        metrics=args.metrics,
        auth_cache_seconds=args.auth_cache_seconds,
        hub_timeout=args.hub_timeout,
        strict_token_scopes=args.strict_token_scopes,
        trusted_services=names(args.trusted_services),
        max_buffered_size=max_buffered_size,
        body_timeout=args.body_timeout,
        min_body_rate=args.min_body_rate,
        idle_timeout=args.idle_timeout,
        download_cache_size=args.download_cache_size,
        trusted_proxies=trusted_proxies,
        cookie_secret=cookie_secret,
        cookie_secret_file=default_cookie_secret_file(database, storage),
    )


def bind_host(hostname: str | None) -> str:
    """Where to listen, from the host of ``$JUPYTERHUB_SERVICE_URL``.

    As JupyterHub's own services do, an IP address is bound as given, so a
    service the Hub reaches at 127.0.0.1 is not exposed on other
    interfaces; ``localhost`` is the loopback address. A DNS name (e.g. a
    Kubernetes Service) names some other address than this process's, so
    every interface is bound ('').
    """
    if not hostname:
        return ''
    if hostname == 'localhost':
        return '127.0.0.1'
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return ''
    return hostname


def default_cookie_secret_file(database_url: str, storage_path: str) -> str:
    """Beside the SQLite file, or in the storage folder every replica shares.

    With a bucket and a shared database there is no folder: '' (the secret
    is then the object ``ngshare_cookie_secret`` in the bucket, see
    :func:`ngshare.startup.load_cookie_secret`).
    """
    try:
        path = sqlite_file(database_url)
    except ArgumentError:
        path = None
    if path is None:
        if is_s3_location(storage_path):
            return ''
        return os.path.join(storage_path, COOKIE_SECRET_NAME)
    return os.path.join(os.path.dirname(os.path.abspath(path)), COOKIE_SECRET_NAME)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format='[%(levelname)1.1s %(asctime)s %(name)s] %(message)s',
        stream=sys.stderr,
    )
    logging.getLogger('alembic').setLevel(logging.WARNING)
    try:
        try:
            check_hub_environment(args, dict(os.environ))
            config = config_from(args, dict(os.environ))
        except StartupError:
            raise
        except Exception as error:  # a check that failed unforeseen
            raise StartupError(
                f'start-up failed: {type(error).__name__}: {error}'
            ) from None
        asyncio.run(serve(config))
    except StartupError as error:
        print(f'ngshare: error: {error}', file=sys.stderr)
        sys.exit(error.status)
    except KeyboardInterrupt:
        pass
