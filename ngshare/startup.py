"""Start-up: from a :class:`~ngshare.config.Config` to a listening server.

Everything that touches the disk, the database or the network before the
first request is served happens here, in this order: the storage folder,
the database (schema checked, then upgraded), the login cookie secret, the
sockets. :mod:`ngshare.cli` has checked the flags and the environment
before, so that a process started the wrong way touches nothing. Every
failure is a :class:`StartupError`, which ``main`` prints as one
``ngshare: error:`` line, with no traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from concurrent.futures import ThreadPoolExecutor

from alembic.util import CommandError as AlembicCommandError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from tornado.netutil import bind_sockets

from .app import make_app
from .auth import make_authenticator
from .config import Config
from .database import migrate, revisions
from .database.engine import make_engine, make_session_factories
from .handlers.base import DRAIN_FACTOR
from .housekeeping import purge_deleted
from .runtime import Runtime
from .server import ProxyAwareHTTPServer
from .storage import BlobStore, StorageError

__all__ = [
    'StartupError',
    'UsageError',
    'build_runtime',
    'load_cookie_secret',
    'prepare_database',
    'start',
]

log = logging.getLogger('ngshare')


class StartupError(Exception):
    """A configuration problem, reported as one line without a traceback."""

    status = 1


class UsageError(StartupError):
    """Started the wrong way (as argparse's errors: exit status 2)."""

    status = 2


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
        except (FileExistsError, NotADirectoryError):
            raise StartupError(
                f'cannot create database folder {directory!r}: '
                f'{first_non_folder(directory)!r} is not a folder'
            ) from None
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


def first_non_folder(path: str) -> str:
    """The first of ``path`` and its parents that exists but is no folder."""
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


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
        bound = listen(server, config)
    except StartupError:
        raise
    except Exception as error:
        reason = (str(error).strip().splitlines() or [''])[0]
        raise StartupError(
            f'start-up failed: {type(error).__name__}: {reason}'
        ) from None
    return runtime, server, bound
