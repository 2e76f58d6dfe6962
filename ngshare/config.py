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
# The login cookie secret's file, beside a SQLite database or in the storage
# folder (which ngshare-admin gc therefore never counts as a blob).
COOKIE_SECRET_NAME = 'ngshare_cookie_secret'  # noqa: S105 (a file name)
# Days a deleted course or assignment stays restorable: the service's
# --deleted-retention-days and ngshare-admin deleted purge --older-than-days.
DEFAULT_DELETED_RETENTION_DAYS = 30
# Days the history keeps its entries (--history-retention-days; 0: forever).
DEFAULT_HISTORY_RETENTION_DAYS = 0
# nbgrader's own default per-file limit is 100000 KB; a request may carry a
# few such files, base64-encoded (4/3 larger).
DEFAULT_MAX_FILE_SIZE = 128 * 1024**2
DEFAULT_MAX_BODY_SIZE = 512 * 1024**2
# Bodies held in memory at once, all requests together, by default: room for
# this many uploads of the largest size, so that a pod's memory can be planned.
BUFFERED_BODIES = 2
DEFAULT_MAX_BUFFERED_SIZE = BUFFERED_BODIES * DEFAULT_MAX_BODY_SIZE
# A body gets this many seconds, plus one per DEFAULT_MIN_BODY_RATE bytes
# (Apache's mod_reqtimeout defaults, body=20,MinRate=500).
DEFAULT_BODY_TIMEOUT = 20.0
DEFAULT_MIN_BODY_RATE = 500
DEFAULT_IDLE_TIMEOUT = 60.0
# The base64 texts of small blobs kept for the next downloads of them (a
# release fetched by a whole class is encoded once): within the memory an
# idle process is planned with (docs/deploying.md).
DEFAULT_DOWNLOAD_CACHE_SIZE = 32 * 1024**2
# A revoked token (or deleted user) is refused at most this long after.
DEFAULT_AUTH_CACHE_SECONDS = 60
DEFAULT_HUB_TIMEOUT = 5.0
# A blob no row refers to any more is removed this long after it was
# released, so that a download already streaming it completes.
DEFAULT_RELEASED_BLOB_GRACE = 600
# configurable-http-proxy on the same machine, as JupyterHub runs it.
DEFAULT_TRUSTED_PROXIES = ('127.0.0.1', '::1')


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of one ngshare process.

    ``vngshare`` selects the stand-alone mode in which the caller's name is
    taken from the ``user`` parameter; otherwise every request is
    authenticated against the Hub at ``hub_api_url``.
    """

    database_url: str = DEFAULT_DATABASE
    # The raw --storage value: a folder, or s3://BUCKET/PREFIX.
    storage_path: str = DEFAULT_STORAGE
    # Object storage only: the endpoint (None: boto3 reads $AWS_ENDPOINT_URL
    # or uses AWS) and path-style addressing.
    s3_endpoint_url: str | None = None
    s3_path_style: bool = False
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
    deleted_retention_days: int = DEFAULT_DELETED_RETENTION_DAYS
    # Days a history entry is kept (0: forever); older ones go hourly.
    history_retention_days: int = DEFAULT_HISTORY_RETENTION_DAYS
    # Seconds a released blob (replaced feedback, a purged item) is kept for
    # downloads in flight before it is removed (0: at once, after commit).
    released_blob_grace_seconds: int = DEFAULT_RELEASED_BLOB_GRACE
    # Serve Prometheus metrics at PREFIX + 'metrics' (to admins only).
    metrics: bool = False
    # How many requests may run database/disk work at the same time.
    worker_threads: int = 8
    # Seconds a Hub answer about a token is cached: how long a revoked
    # token or a deleted user may still be accepted.
    auth_cache_seconds: int = DEFAULT_AUTH_CACHE_SECONDS
    # Longest wait for one Hub lookup before answering 503.
    hub_timeout: float = DEFAULT_HUB_TIMEOUT
    # Accept only tokens scoped for this service (access:services), not the
    # users' own server tokens.
    strict_token_scopes: bool = False
    # Hub services whose own tokens may call ngshare (acting under their name).
    trusted_services: frozenset[str] = frozenset()
    # Bodies: held at once across requests; the time one may take
    # (body_timeout plus one second per min_body_rate bytes); how long
    # headers may take and an idle kept-alive connection may stay.
    max_buffered_size: int = DEFAULT_MAX_BUFFERED_SIZE
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    min_body_rate: int = DEFAULT_MIN_BODY_RATE
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    # Bytes of encoded blobs kept for downloads (0: none kept).
    download_cache_size: int = DEFAULT_DOWNLOAD_CACHE_SIZE
    # Direct peers whose X-Forwarded-For / X-Real-Ip name the client.
    trusted_proxies: frozenset[str] = frozenset(DEFAULT_TRUSTED_PROXIES)
