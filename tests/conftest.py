"""Shared fixtures: real servers on loopback, real databases.

The fixtures live in small modules beside this file, one job each:
``_postgres`` starts a throw-away PostgreSQL server, ``_servers`` starts
ngshare (and a Hub stand-in) as real processes.
"""

from _postgres import *  # noqa: F401,F403
from _servers import *  # noqa: F401,F403
