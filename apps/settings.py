"""Settings from environment variables only (12-factor).

With nothing set, fixledger runs on its embedded default: SQLite and Celery's filesystem broker
under FIXLEDGER_DATA_DIR, for a single host. Production sets DATABASE_URL, CELERY_BROKER_URL,
SECRET_KEY and ALLOWED_HOSTS; every variable is documented in deploy/env.example.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DATA_DIR = Path(env_str("FIXLEDGER_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _embedded_secret_key() -> str:
    # A single-host install keeps a generated key beside its data so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY") or _embedded_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.projects",
    "apps.changes",
    "apps.measurements",
    "apps.search",
    "apps.checklists",
    "apps.notifications",
    "apps.operations",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    # /healthz and /readyz, for any host and over http: probes need not go through nginx.
    "apps.core.health.HealthProbeMiddleware",
    "apps.core.middleware.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, so it sees the user that authentication set and can lock out brute force.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "apps.urls"
WSGI_APPLICATION = "apps.wsgi.application"
ASGI_APPLICATION = "apps.asgi.application"

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
                "apps.accounts.context_processors.role",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
_sqlite_path = DATA_DIR / "fixledger.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{_sqlite_path}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One web process and one worker write to the same file: WAL lets readers run beside the
    # writer, and IMMEDIATE transactions take the write lock up front so none fails mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The test database is a file so that a real worker process can see it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "changes:list"
LOGOUT_REDIRECT_URL = "login"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("LOGIN_THROTTLING", True)
if env_bool("BEHIND_PROXY", False):
    # Behind the proxy every request comes from the proxy's address: without this, a few wrong
    # passwords would lock a user out for everyone.
    AXES_CLIENT_IP_CALLABLE = "apps.accounts.throttle.proxied_client_ip"

# --- Internationalisation, static files ----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Security ------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# One number bounds every request body, an imported file included: a larger one is refused with
# 413 before any view reads it (apps.core.middleware.BodyLimitMiddleware). Django's own limits
# follow it, and client_max_body_size in deploy/nginx.conf.template must equal it
# (tests/core/test_deploy.py).
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# An upload is read whole (imports parse it in one piece), so a temporary file would not save
# memory; the body limit already bounds it.
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 10

# --- Cache ---------------------------------------------------------------------------------
# API throttles count requests here. Several web processes or hosts must share one cache (Redis
# in production); the embedded default keeps counts per process.
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "fixledger",
        }
    }
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL, not {CACHE_URL!r}")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.Pagination",
    # JSON only: a form body cannot tell a number or a list from text, so what the schema calls
    # invalid could not be refused. Anything else is a 415.
    "DEFAULT_PARSER_CLASSES": ["apps.core.limits.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    # Per user, on the endpoints that cost the most (views name their scope).
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.limits.ScopedThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "export": env_str("THROTTLE_EXPORT_RATE", "30/hour"),
        "search": env_str("THROTTLE_SEARCH_RATE", "120/minute"),
        "measure": env_str("THROTTLE_MEASURE_RATE", "60/hour"),
    },
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
# An export streams at most this many changes, newest filed first, and says when it stopped.
EXPORT_MAX_CHANGES = env_int("EXPORT_MAX_CHANGES", 100_000)
# Exports one web process runs at once; more get 429. Below WEB_THREADS, so that long exports
# never hold every thread of a process while other requests wait.
EXPORT_CONCURRENCY = env_int("EXPORT_CONCURRENCY", 2)
SPECTACULAR_SETTINGS = {
    "TITLE": "fixledger API",
    "DESCRIPTION": "Changes, projects and their evidence. Authenticate with "
    "`Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery --------------------------------------------------------------------------------
_broker_dir = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Without it, broadcast (control) messages land in the current directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # A worker takes one message per poll: at the default 1 s, the reconcile passes alone
        # would keep a queue behind.
        "polling_interval": 0.2,
    }
else:
    # Longer than the longest measurement, or Redis hands a running task to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600),
        # An unreachable host (not only a refused port) must fail a publish quickly too.
        "socket_connect_timeout": env_int("CELERY_CONNECT_TIMEOUT", 2),
    }
    # Redis has only 16 databases: installs (or test runs of several checkouts) that share one
    # keep apart by a prefix on every key and channel the broker uses.
    CELERY_BROKER_KEY_PREFIX = env_str("CELERY_BROKER_KEY_PREFIX")
    if CELERY_BROKER_KEY_PREFIX:
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = CELERY_BROKER_KEY_PREFIX
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that queues work must not hang on a broker that is down: the row is committed
# first, so a failed publish is logged and beat publishes the work once the broker is back.
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_CONNECT_TIMEOUT", 2)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# The database is the source of truth for work; Celery keeps no results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_SOFT_TIME_LIMIT", 3 * 3600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_HARD_TIME_LIMIT", 3 * 3600 + 300)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Commands at a revision run in a bubblewrap sandbox; a worker that cannot sandbox refuses them
# unless this is true, and every result it records says it ran unsandboxed.
ALLOW_UNSANDBOXED_RUNS = env_bool("FIXLEDGER_ALLOW_UNSANDBOXED", False)
# Folders the sandbox shows read-only besides the system and Python: a service's own runtime.
SANDBOX_READONLY_FOLDERS = env_list("FIXLEDGER_SANDBOX_READONLY")
# Every kind of work (measurements, verifications, syncs, tag pushes) heart-beats every
# WORK_HEARTBEAT_SECONDS while it runs, however long one step takes; beat, every
# WORK_RECONCILE_SECONDS, publishes again work whose heartbeat is older than
# WORK_HEARTBEAT_STALE_SECONDS (its worker died) or whose message was never claimed that long.
WORK_HEARTBEAT_SECONDS = env_int("WORK_HEARTBEAT_SECONDS", 10)
WORK_HEARTBEAT_STALE_SECONDS = env_int("WORK_HEARTBEAT_STALE_SECONDS", 30)
WORK_RECONCILE_SECONDS = env_int("WORK_RECONCILE_SECONDS", 15)
if WORK_HEARTBEAT_STALE_SECONDS < 2 * WORK_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "WORK_HEARTBEAT_STALE_SECONDS must be at least twice WORK_HEARTBEAT_SECONDS, or live "
        "work would be taken from its worker."
    )
# A reconcile pass that waited behind other work for a few periods is dropped: later ones are
# already on their way.
_reconcile = {
    "schedule": WORK_RECONCILE_SECONDS,
    "options": {"expires": max(30, 2 * WORK_RECONCILE_SECONDS)},
}
CELERY_BEAT_SCHEDULE = {
    "sync-repositories": {
        "task": "apps.projects.tasks.sync_all_projects",
        "schedule": env_int("REPOSITORY_SYNC_SECONDS", 300),
    },
    "reconcile-measurements": {
        "task": "apps.measurements.tasks.reconcile_measurements",
        **_reconcile,
    },
    "reconcile-verifications": {
        "task": "apps.checklists.tasks.reconcile_verifications",
        **_reconcile,
    },
    "reconcile-repository-jobs": {
        "task": "apps.projects.tasks.reconcile_repository_jobs",
        **_reconcile,
    },
    "prune-stale-worktrees": {
        "task": "apps.projects.tasks.prune_stale_worktrees",
        "schedule": 3600,
    },
    "reconcile-deliveries": {
        "task": "apps.notifications.tasks.reconcile_deliveries",
        **_reconcile,
    },
    "prune-measurements": {
        "task": "apps.measurements.tasks.prune_measurements",
        "schedule": 6 * 3600,
    },
}
# Days a finished measurement keeps the raw samples of its runs (RSS timelines, output tails);
# its results, verdicts and per-run figures are kept for ever.
RETENTION_DAYS = env_int("RETENTION_DAYS", 90)
if RETENTION_DAYS < 1:
    raise ImproperlyConfigured("RETENTION_DAYS must be at least 1.")

# --- Email and notifications --------------------------------------------------------------
# With EMAIL_HOST set, mail goes out by SMTP; without it (the embedded default) each message is
# written as a file under DATA_DIR/mail, and `manage.py serve` says so when it starts.
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = DATA_DIR / "mail"
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "fixledger@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Webhook and Slack calls: seconds before one gives up; attempts per delivery; seconds before
# the first retry, doubled for each one after (30 s, 1 min, 2 min, 4 min by default).
NOTIFICATION_HTTP_TIMEOUT = env_int("NOTIFICATION_HTTP_TIMEOUT", 10)
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 5)
try:
    NOTIFICATION_RETRY_SECONDS = float(env_str("NOTIFICATION_RETRY_SECONDS", "30"))
except ValueError:
    raise ImproperlyConfigured("NOTIFICATION_RETRY_SECONDS must be a number of seconds") from None
if NOTIFICATION_MAX_ATTEMPTS < 1 or NOTIFICATION_RETRY_SECONDS < 0:
    raise ImproperlyConfigured(
        "NOTIFICATION_MAX_ATTEMPTS must be at least 1 and NOTIFICATION_RETRY_SECONDS at least 0."
    )

# --- Logging -------------------------------------------------------------------------------
# LOG_FORMAT=json writes one JSON object a line, for a log collector to follow one piece of work
# across web processes and workers by its request id, user, task, measurement and change.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
# Beat's reconcile passes log only when they did something (apps.core.quiet).
_ROUTINE_TASKS = [
    entry["task"] for name, entry in CELERY_BEAT_SCHEDULE.items() if name.startswith("reconcile-")
]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "apps.core.context.LogContextFilter"},
        "routine": {"()": "apps.core.quiet.RoutineTaskFilter", "tasks": _ROUTINE_TASKS},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id_or_dash)s] %(message)s"
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": [
                "asctime",
                "levelname",
                "name",
                "message",
                "request_id",
                "user",
                "task_id",
                "measurement",
                "change",
            ],
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "routine"],
        },
        # A measurement's lines, kept on it for its page (apps.measurements.logs).
        "measurement": {
            "class": "apps.measurements.logs.MeasurementLogHandler",
            "formatter": "plain",
            "filters": ["context"],
            "level": "INFO",
        },
    },
    "root": {"handlers": ["console", "measurement"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- Error reporting -----------------------------------------------------------------------
# Sentry for web processes and workers, when SENTRY_DSN is set (needs `pip install '.[sentry]'`).
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    from apps.core.errors import start_error_reporting

    start_error_reporting(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT"),
        release=env_str("SENTRY_RELEASE"),
    )
