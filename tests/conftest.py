"""Shared fixtures: real servers on loopback, real databases.

The fixtures live in small modules beside this file, one job each, and are
loaded here as pytest plugins: pytest registers their fixtures and hooks
once for the whole suite, and a test module imports only the helpers it
uses, by name (``from _servers import token_for``).

``_postgres`` starts a throw-away PostgreSQL server; ``_servers`` starts
ngshare (and a Hub stand-in) as real processes and runs tests marked
``both_databases`` on SQLite and on PostgreSQL; ``_shared_server`` keeps
one stand-alone ngshare per worker, emptied before each test that asks for
it, for the tests where a fresh process is not the point; ``_operations``
calls the operations on a temporary SQLite file, without HTTP; ``_replicas`` and
``_races`` start several replicas on one database; ``_jupyterhub`` starts
a real JupyterHub; ``_seaweedfs`` a real S3-compatible store (SeaweedFS) and
fresh buckets on it; ``_counting_server`` an in-process server whose SQL
statements are counted. ``_exchange`` (the nbgrader exchange sites) is not
listed: it imports nbformat, two seconds that every run would pay, so the
exchange test modules import its fixtures themselves.
"""

pytest_plugins = [
    '_postgres',
    '_servers',
    '_shared_server',
    '_operations',
    '_admin',
    '_replicas',
    '_races',
    '_jupyterhub',
    '_seaweedfs',
    '_counting_server',
]
