"""PostgreSQL sessions of ngshare cannot keep their locks for long after a
replica dies or freezes: keepalives and an idle-in-transaction timeout are
set on every connection, unless the database URL sets them itself."""

from __future__ import annotations

from sqlalchemy import text

from ngshare.database.engine import make_engine


def settings(engine) -> dict[str, str]:
    with engine.connect() as connection:
        shown = {
            name: connection.execute(text(f'SHOW {name}')).scalar_one()
            for name in (
                'idle_in_transaction_session_timeout',
                'client_connection_check_interval',
            )
        }
        raw = connection.connection.dbapi_connection
        return {**shown, **raw.info.get_parameters()}


def test_connections_detect_vanished_peers(postgres_url):
    engine = make_engine(postgres_url)
    try:
        seen = settings(engine)
    finally:
        engine.dispose()
    assert seen['idle_in_transaction_session_timeout'] == '5min'
    assert seen['client_connection_check_interval'] == '10s'
    assert seen['keepalives'] == '1'
    assert seen['keepalives_idle'] == '30'
    assert seen['keepalives_count'] == '3'


def test_the_database_url_wins(postgres_url):
    separator = '&' if '?' in postgres_url else '?'
    engine = make_engine(postgres_url + separator + 'keepalives_idle=7')
    try:
        seen = settings(engine)
    finally:
        engine.dispose()
    assert seen['keepalives_idle'] == '7'
    assert seen['idle_in_transaction_session_timeout'] == '5min'
