"""PostgreSQL seen from outside the processes under test: which backends
serve a process, who waits for a lock, and whether anything is left over.

The tests of a replica killed mid-request (test_replica_crash.py) need to
know that the killed process's sessions, transactions and locks are gone
from the server, not merely that the process is. A process's backends are
found by the local ports of its TCP connections to the server (from
``/proc/<pid>/fd`` and ``/proc/net/tcp``, Linux only), matched against
``pg_stat_activity.client_port``.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url

__all__ = ['Postgres', 'client_ports']


class Postgres:
    """Two autocommit connections to the database of SQLAlchemy ``url``:
    ``monitor`` to look at sessions and locks, ``holder`` to hold a lock
    that a process under test will wait for."""

    def __init__(self, url: str):
        import psycopg  # the tests that need it skip without it

        parts = make_url(url)
        self.port = parts.port
        self.connect_args = {
            'host': parts.host,
            'port': parts.port,
            'user': parts.username,
            'password': parts.password,
            'dbname': parts.database,
            'autocommit': True,
        }
        self.monitor = psycopg.connect(**self.connect_args)
        self.holder = psycopg.connect(**self.connect_args)

    def close(self) -> None:
        self.monitor.close()
        self.holder.close()

    def rows(self, query: str, params=()) -> list[tuple]:
        return self.monitor.execute(query, params).fetchall()

    def lock(self, key: str) -> None:
        """Hold the advisory lock ngshare takes on blob ``key`` before it
        writes or deletes it (``blobs/lifecycle.py: lock_blob``)."""
        self.holder.execute('SELECT pg_advisory_lock(hashtextextended(%s, 0))', [key])

    def unlock(self, key: str) -> None:
        done = self.holder.execute(
            'SELECT pg_advisory_unlock(hashtextextended(%s, 0))', [key]
        )
        assert done.fetchone() == (True,)

    def backends_of(self, server) -> set[int]:
        """Backend PIDs serving ``server``'s connections (by client port)."""
        ports = client_ports(server.proc.pid, self.port)
        found = self.rows(
            'SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)',
            [sorted(ports)],
        )
        return {pid for (pid,) in found}

    def waiting_for_advisory_lock(self) -> set[int]:
        found = self.rows(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        return {pid for (pid,) in found}

    def gone(self, pids: set[int]) -> bool:
        """None of ``pids`` is connected or holds or awaits a lock."""
        sessions = self.rows(
            'SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)', [sorted(pids)]
        )
        locks = self.rows(
            'SELECT pid FROM pg_locks WHERE pid = ANY(%s)', [sorted(pids)]
        )
        return not sessions and not locks

    def assert_clean(self, survivors) -> None:
        """No advisory lock, no open transaction, and no client session of
        this database but the survivors' and ours."""
        mine = {self.monitor.info.backend_pid, self.holder.info.backend_pid}
        expected = set().union(*(self.backends_of(s) for s in survivors)) | mine
        sessions = self.rows(
            'SELECT pid, state, xact_start FROM pg_stat_activity'
            " WHERE datname = current_database() AND backend_type = 'client backend'"
        )
        assert {pid for pid, _, _ in sessions} <= expected, sessions
        assert not [s for s in sessions if s[0] not in mine and s[2] is not None], (
            sessions
        )
        assert self.rows("SELECT * FROM pg_locks WHERE locktype = 'advisory'") == []
        assert self.rows('SELECT * FROM pg_locks WHERE NOT granted') == []


def client_ports(pid: int, server_port: int) -> set[int]:
    """Local ports of process ``pid``'s TCP connections to ``server_port``."""
    inodes = set()
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:  # closed meanwhile
            continue
        if target.startswith('socket:['):
            inodes.add(int(target[len('socket:[') : -1]))
    ports = set()
    with open('/proc/net/tcp') as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if inode in inodes and int(remote.rsplit(':', 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(':', 1)[1], 16))
    return ports
