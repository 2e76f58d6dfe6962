"""Start-up: from a :class:`~ngshare.config.Config` to a listening server.

Everything that touches the disk, the database or the network before the
first request is served happens here, in this order: the blob store (a
folder, or a bucket: reachable, existing, writable), the database (schema
checked, then upgraded, by the path ``ngshare-admin`` takes too:
:mod:`ngshare.database.opening`), the login cookie secret (a file, or an
object in the bucket that every replica shares), the sockets; then serving
until SIGINT or SIGTERM. :mod:`ngshare.cli` has
checked the flags and the environment before, so that a process started
the wrong way touches nothing. Every failure is a :class:`StartupError`,
which ``main`` prints as one ``ngshare: error:`` line, with no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import tempfile
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from tornado.netutil import bind_sockets

from .app import make_app
from .auth import make_authenticator
from .blobs import open_store
from .blobs.store import SECRET_PREFIX, BlobStore, BlobStoreFailure, StorageError
from .config import COOKIE_SECRET_NAME, Config
from .database.engine import make_recorder_factory, make_session_factories
from .database.opening import CREATE_FOLDER, DatabaseOpenError, open_database
from .database.revisions import SchemaStatus
from .encoded_cache import EncodedCache
from .handlers.base import DRAIN_FACTOR
from .housekeeping import purge_for, start_housekeeping
from .runtime import Runtime, writer_pool_for
from .server import ProxyAwareHTTPServer
from .version import __version__

__all__ = [
    'StartupError',
    'UsageError',
    'build_runtime',
    'load_cookie_secret',
    'prepare_database',
    'serve',
    'start',
]

log = logging.getLogger('ngshare')


class StartupError(Exception):
    """A configuration problem, reported as one line without a traceback."""

    status = 1


class UsageError(StartupError):
    """Started the wrong way (as argparse's errors: exit status 2)."""

    status = 2


def load_cookie_secret(config: Config, store: BlobStore | None = None) -> bytes:
    """The secret that signs login cookies, the same across restarts.

    ``NGSHARE_COOKIE_SECRET`` (``config.cookie_secret``) wins. Else the
    ``cookie_secret_file`` beside a SQLite database or in the storage folder
    is created once, atomically (written to a temporary file and hard-linked
    into place, so two replicas starting together agree on one secret).
    With a bucket and a database every replica shares (no file named), it
    is the object ``ngshare_cookie_secret`` under the bucket's prefix,
    created once with :meth:`~ngshare.blobs.s3.S3Store.create_once`: the
    first replica's secret is the one every later replica reads, and no
    folder is needed.
    """
    if config.cookie_secret:
        return config.cookie_secret
    if not config.cookie_secret_file and store is not None:
        return _stored_cookie_secret(store)
    path = config.cookie_secret_file
    try:
        if not os.path.exists(path):
            directory = os.path.dirname(path) or '.'
            os.makedirs(directory, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=SECRET_PREFIX)
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


def _stored_cookie_secret(store: BlobStore) -> bytes:
    """The cookie secret kept in the store itself (see :func:`load_cookie_secret`)."""
    where = f'{COOKIE_SECRET_NAME!r} in {store.location}'
    create_once = getattr(store, 'create_once', None)
    if create_once is None:
        raise StartupError(
            f'cannot keep the cookie secret {where}: set NGSHARE_COOKIE_SECRET'
        )
    try:
        stored = create_once(COOKIE_SECRET_NAME, secrets.token_hex(32).encode('ascii'))
        secret = bytes.fromhex(stored.decode('ascii').strip())
    except BlobStoreFailure as error:
        raise StartupError(
            f'cannot use the cookie secret {where}: {error.advice()}'
        ) from None
    except (OSError, StorageError, ValueError) as error:
        raise StartupError(f'cannot use the cookie secret {where}: {error}') from None
    if not secret:
        raise StartupError(
            f'the cookie secret {where} is empty: delete it to make a new one'
        )
    return secret


def prepare_database(config: Config):
    """Connect, check the schema revision, and upgrade it unless told not to.

    The recorded revision is read first, without changing the database: a
    revision this ngshare does not know (a newer ngshare upgraded the
    database) is refused, and so, with ``--no-upgrade-db``, is any revision
    but the current one, so that the service never runs on a schema it was
    not written for. The path is ``ngshare-admin``'s too
    (:func:`ngshare.database.opening.open_database`); only the wording of an
    unreachable database is the service's own.
    """
    try:
        engine, _status = open_database(
            config.database_url,
            missing_file=CREATE_FOLDER,
            pool_size=config.worker_threads,
            upgrade_storage=config.storage_path if config.upgrade_db else None,
            outdated=SchemaStatus.outdated_message,
        )
    except DatabaseOpenError as error:
        raise StartupError(str(error)) from None
    except ArgumentError as error:  # the engine refused the URL's settings
        raise StartupError(f'cannot use database: {error}') from None
    except SQLAlchemyError as error:
        reason = str(getattr(error, 'orig', None) or error).strip().splitlines()[0]
        shown = make_url(config.database_url).render_as_string(hide_password=True)
        raise StartupError(f'cannot use database {shown}: {reason}') from None
    return engine


def build_runtime(config: Config) -> Runtime:
    try:
        store = open_store(
            config.storage_path,
            endpoint_url=config.s3_endpoint_url,
            path_style=config.s3_path_style,
        )
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
        write_pool=writer_pool_for(engine),
        recorder=make_recorder_factory(engine),
        encoded_cache=EncodedCache(config.download_cache_size),
    )


def listen(server: ProxyAwareHTTPServer, config: Config) -> str:
    """Bind the configured address; return the addresses bound, as shown.

    The log names what the sockets are bound to (every interface is
    ``0.0.0.0`` and ``[::]``), not what was asked for.
    """
    try:
        sockets = bind_sockets(config.port, address=config.host or None)
    except OSError as error:
        raise StartupError(
            f'cannot listen on {config.host or "*"}:{config.port}: '
            f'{error.strerror or error}'
        ) from None
    server.add_sockets(sockets)
    bound = []
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        shown = f'[{host}]:{port}' if ':' in host else f'{host}:{port}'
        if shown not in bound:
            bound.append(shown)
    return ', '.join(bound)


def start(config: Config) -> tuple[Runtime, ProxyAwareHTTPServer, str]:
    """Everything before serving: storage, database, secret, sockets.

    Any failure here ends start-up with one ``ngshare: error:`` line: the
    expected ones say what to do, and anything unforeseen is shown as its
    exception's type and message rather than as a traceback.
    """
    try:
        runtime = build_runtime(config)
        try:
            purge_for(runtime)
        except Exception:
            log.exception('Purging expired deleted items failed; will retry hourly')
        app = make_app(runtime, load_cookie_secret(config, runtime.store))
        server = ProxyAwareHTTPServer(
            app,
            trusted_proxies=config.trusted_proxies,
            max_body_size=config.max_body_size * DRAIN_FACTOR,
            idle_connection_timeout=config.idle_timeout,
        )
        bound = listen(server, config)
    except StartupError:
        raise
    except Exception as error:
        reason = (str(error).strip().splitlines() or [''])[0]
        raise StartupError(
            f'start-up failed: {type(error).__name__}: {reason}'
        ) from None
    return runtime, server, bound


async def serve(config: Config) -> None:
    """Start (:func:`start`), then serve until SIGINT or SIGTERM, with the
    housekeeping timers running; stop them, the server, the worker pool and
    the engine in that order."""
    runtime, server, bound = start(config)
    if config.vngshare:
        log.warning(
            'vngshare (stand-alone mode): anyone can act as any user. '
            'DO NOT USE IN PRODUCTION.'
        )
    if config.debug:
        log.warning('Debug mode is on: private information may leak.')
    log.info('ngshare %s serving %s on %s', __version__, config.prefix, bound)
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
        runtime.shutdown()
        runtime.engine.dispose()
        log.info('ngshare stopped')
