"""``python -m ngshare``: the documented command line, and start-up.

This is the only module that reads the environment: the flags documented in
"Command Line Arguments" and the variables JupyterHub sets for a managed
service become one :class:`~ngshare.config.Config`. A configuration that
cannot work stops start-up with a single ``ngshare: error:`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from alembic.util import CommandError as AlembicCommandError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from . import config as defaults
from .app import make_app
from .auth import make_authenticator
from .config import Config
from .database import migrate, revisions
from .database.engine import make_engine, make_session_factories
from .flags import build_parser, names, parse_size
from .handlers.base import DRAIN_FACTOR
from .housekeeping import purge_deleted, start_housekeeping
from .runtime import Runtime
from .server import ProxyAwareHTTPServer, parse_networks
from .storage import BlobStore, StorageError
from .version import __version__

# build_parser and parse_size are ngshare.flags', kept importable from here.
__all__ = ['build_parser', 'config_from', 'main', 'parse_size', 'serve']

log = logging.getLogger('ngshare')

COOKIE_SECRET_NAME = 'ngshare_cookie_secret'  # noqa: S105 (a file name)


class StartupError(Exception):
    """A configuration problem, reported as one line without a traceback."""


def config_from(args: argparse.Namespace, environ: dict[str, str]) -> Config:
    """Combine the flags and the Hub's environment into one Config."""
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
            parsed = urlparse(service_url)
            port = parsed.port or 80
            host = bind_host(parsed.hostname)
        if args.host is not None:
            host = args.host
    service_name = environ.get('JUPYTERHUB_SERVICE_NAME', 'ngshare')
    hub_base = environ.get('JUPYTERHUB_BASE_URL', '/')
    database = args.database or (
        defaults.VNGSHARE_DATABASE if args.vngshare else defaults.DEFAULT_DATABASE
    )
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
    """Beside the SQLite file, or in the storage folder every replica shares."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return os.path.join(storage_path, COOKIE_SECRET_NAME)
    if url.get_backend_name() == 'sqlite' and url.database not in (
        None,
        '',
        ':memory:',
    ):
        return os.path.join(
            os.path.dirname(os.path.abspath(url.database)), COOKIE_SECRET_NAME
        )
    return os.path.join(storage_path, COOKIE_SECRET_NAME)


def load_cookie_secret(config: Config) -> bytes:
    """The secret that signs login cookies, the same across restarts.

    Created once, atomically (written to a temporary file and hard-linked
    into place, so two replicas starting together agree on one secret).
    """
    if config.cookie_secret:
        return config.cookie_secret
    path = config.cookie_secret_file
    try:
        if not os.path.exists(path):
            directory = os.path.dirname(path) or '.'
            os.makedirs(directory, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=directory, prefix='.secret-')
            try:
                with os.fdopen(fd, 'w') as stream:
                    stream.write(secrets.token_hex(32))
                os.chmod(temporary, 0o600)
                with contextlib.suppress(FileExistsError):
                    os.link(temporary, path)
            finally:
                os.unlink(temporary)
        with open(path) as stream:
            return bytes.fromhex(stream.read().strip())
    except (OSError, ValueError) as error:
        raise StartupError(f'cannot use cookie secret file {path!r}: {error}') from None


def prepare_database(config: Config):
    """Connect, check the schema revision, and upgrade it unless told not to.

    The recorded revision is read first, without changing the database: a
    revision this ngshare does not know (a newer ngshare upgraded the
    database) is refused, and so, with ``--no-upgrade-db``, is any revision
    but the current one, so that the service never runs on a schema it was
    not written for.
    """
    try:
        url = make_url(config.database_url)
    except ArgumentError:
        raise StartupError(f'invalid database URL {config.database_url!r}') from None
    if url.get_backend_name() == 'sqlite' and url.database not in (
        None,
        '',
        ':memory:',
    ):
        directory = os.path.dirname(os.path.abspath(url.database))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            raise StartupError(
                f'cannot create database folder {directory!r}: {error.strerror}'
            ) from None
    try:
        engine = make_engine(config.database_url, pool_size=config.worker_threads)
    except (ArgumentError, ImportError) as error:
        raise StartupError(f'cannot use database: {error}') from None
    try:
        try:
            status = revisions.inspect_schema(config.database_url)
            if not status.known:
                raise StartupError(status.newer_message())
            if config.upgrade_db:
                migrate.upgrade(engine, config.storage_path)
            elif not status.is_current:
                raise StartupError(status.outdated_message())
            with engine.connect() as connection:
                connection.execute(text('SELECT 1'))
        except BaseException:
            engine.dispose()
            raise
    except migrate.MigrationError as error:
        raise StartupError(str(error)) from None
    except AlembicCommandError as error:
        # E.g. a newer ngshare upgraded the database since it was inspected.
        raise StartupError(f'cannot upgrade the database: {error}') from None
    except SQLAlchemyError as error:
        reason = str(getattr(error, 'orig', None) or error).strip().splitlines()[0]
        raise StartupError(
            f'cannot use database {url.render_as_string(hide_password=True)}: {reason}'
        ) from None
    return engine


def build_runtime(config: Config) -> Runtime:
    store = BlobStore(config.storage_path)
    try:
        store.check_usable()
    except StorageError as error:
        raise StartupError(str(error)) from None
    engine = prepare_database(config)
    reader, writer = make_session_factories(engine)
    return Runtime(
        config=config,
        engine=engine,
        reader=reader,
        writer=writer,
        store=store,
        authenticator=make_authenticator(config),
        pool=ThreadPoolExecutor(config.worker_threads, thread_name_prefix='ngshare'),
    )


async def serve(config: Config) -> None:
    runtime = build_runtime(config)
    try:
        purge_deleted(runtime)
    except Exception:
        log.exception('Purging expired deleted items failed; will retry hourly')
    app = make_app(runtime, load_cookie_secret(config))
    server = ProxyAwareHTTPServer(
        app,
        trusted_proxies=config.trusted_proxies,
        max_body_size=config.max_body_size * DRAIN_FACTOR,
        idle_connection_timeout=config.idle_timeout,
    )
    try:
        server.listen(config.port, address=config.host)
    except OSError as error:
        raise StartupError(
            f'cannot listen on {config.host or "*"}:{config.port}: {error.strerror}'
        ) from None
    if config.vngshare:
        log.warning(
            'vngshare (stand-alone mode): anyone can act as any user. '
            'DO NOT USE IN PRODUCTION.'
        )
    if config.debug:
        log.warning('Debug mode is on: private information may leak.')
    log.info(
        'ngshare %s serving %s on %s:%d',
        __version__,
        config.prefix,
        config.host or '*',
        config.port,
    )
    housekeeping = start_housekeeping(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        housekeeping.stop()
        server.stop()
        runtime.pool.shutdown(wait=True, cancel_futures=True)
        runtime.engine.dispose()
        log.info('ngshare stopped')


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format='[%(levelname)1.1s %(asctime)s %(name)s] %(message)s',
        stream=sys.stderr,
    )
    logging.getLogger('alembic').setLevel(logging.WARNING)
    try:
        config = config_from(args, dict(os.environ))
        asyncio.run(serve(config))
    except StartupError as error:
        print(f'ngshare: error: {error}', file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
