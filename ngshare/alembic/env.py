"""Alembic environment of ngshare.

At run time :mod:`ngshare.database.migrate` passes an open connection (already
in a transaction, prepared for the backend) in ``config.attributes``. From the
command line (developers: ``alembic revision --autogenerate`` at the top of
the repository) the URL comes from ``alembic.ini`` and the connection is
prepared the same way, so both paths migrate with the same safety rules.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from ngshare.database.engine import make_engine
from ngshare.database.migrate import migration_connection
from ngshare.database.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite can alter little in place: let batch mode re-create tables.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_from_command_line() -> None:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    # ``alembic -x storage_path=/srv/ngshare/files upgrade head`` lets the
    # file-size revision read the sizes from disk.
    x_arguments = context.get_x_argument(as_dictionary=True)
    config.attributes.setdefault('storage_path', x_arguments.get('storage_path'))
    engine = make_engine(config.get_main_option('sqlalchemy.url'))
    try:
        with migration_connection(engine) as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        'ngshare migrations move data and need a live database;'
        ' offline (--sql) mode is not supported'
    )
elif config.attributes.get('connection') is not None:
    run_migrations(config.attributes['connection'])
else:
    run_from_command_line()
