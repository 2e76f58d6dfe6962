"""The one configuration object of a running ngshare.

Everything the service needs to know is decided once, by :mod:`ngshare.cli`
from the documented command-line flags and the environment variables that
JupyterHub sets for a managed service, and handed to the rest of the code as
a :class:`Config`. No other module reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses

DEFAULT_DATABASE = 'sqlite:////srv/ngshare/ngshare.db'
DEFAULT_STORAGE = '/srv/ngshare/files/'
# The documented stand-alone defaults (development only).
VNGSHARE_DATABASE = 'sqlite:////tmp/ngshare.db'
VNGSHARE_STORAGE = '/tmp/ngshare/'  # noqa: S108
VNGSHARE_PREFIX = '/api/'
VNGSHARE_HOST = '127.0.0.1'
VNGSHARE_PORT = 12121
# nbgrader's own default per-file limit is 100000 KB; a request may carry a
# few such files, base64-encoded (4/3 larger).
DEFAULT_MAX_FILE_SIZE = 128 * 1024**2
DEFAULT_MAX_BODY_SIZE = 512 * 1024**2


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of one ngshare process.

    ``vngshare`` selects the stand-alone mode in which the caller's name is
    taken from the ``user`` parameter; otherwise every request is
    authenticated against the Hub at ``hub_api_url``.
    """

    database_url: str = DEFAULT_DATABASE
    storage_path: str = DEFAULT_STORAGE
    admins: frozenset[str] = frozenset()
    debug: bool = False
    upgrade_db: bool = True
    vngshare: bool = False
    prefix: str = '/'
    host: str = ''
    port: int = 10101
    # The Hub's API, e.g. http://127.0.0.1:8081/hub/api; None in vngshare
    # mode when no Hub is configured.
    hub_api_url: str | None = None
    # This service's own API token (JUPYTERHUB_API_TOKEN); used for OAuth.
    hub_api_token: str = ''
    # Public prefix of the Hub (JUPYTERHUB_BASE_URL + 'hub/'), for login
    # redirects.
    hub_prefix: str = '/hub/'
    hub_host: str = ''
    service_name: str = 'ngshare'
    oauth_client_id: str = ''
    oauth_redirect_uri: str = ''
    # Secret that signs the browser login cookie. Empty means: read or create
    # ``cookie_secret_file``, so that restarts and replicas agree.
    cookie_secret: bytes = b''
    cookie_secret_file: str = ''
    # Largest request body (bytes) and largest single uploaded file (bytes,
    # decoded); larger uploads are answered 413 and nothing is stored.
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    # Days a deleted course or assignment stays restorable (0: not kept).
    deleted_retention_days: int = 30
    # Serve Prometheus metrics at PREFIX + 'metrics' (to admins only).
    metrics: bool = False
    # How many requests may run database/disk work at the same time.
    worker_threads: int = 8
    # Seconds a Hub answer about a token is cached.
    auth_cache_seconds: int = 300

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith('sqlite')
