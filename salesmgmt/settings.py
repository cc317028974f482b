"""One settings file, driven by environment variables.

Nothing set gives a working local app: SQLite, eager Celery tasks, local memory cache.
`DATABASE_URL` switches to PostgreSQL, `CELERY_BROKER_URL` to a real broker (Redis).
Production: set DEBUG=0, SECRET_KEY, ALLOWED_HOSTS and HTTPS=1; `manage.py check --deploy`
is then clean.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# The development key below is refused by every serving process when DEBUG is off (salesmgmt.startup).
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me")
TESTING = env_bool("TESTING", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Behind reverse proxies of ours (BEHIND_PROXY=1; PROXY_COUNT of them): X-Forwarded-Proto is trusted, and the
# client's address is the X-Forwarded-For entry the outermost proxy added, not REMOTE_ADDR (the proxy's).
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
PROXY_COUNT = env_int("PROXY_COUNT", 1)
if PROXY_COUNT < 1:
    raise ImproperlyConfigured("PROXY_COUNT must be >= 1")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Django's own widget templates, for the form renderer below.
    "django.forms",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular_sidecar",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "axes",
    "csp",
    "salesmgmt",
    "crm",
    "pipeline",
    "targets",
    "coaching",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "crm.middleware.ScopeMemoMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: turns a login that axes refused into the lockout answer (salesmgmt.security.lockout_response).
    "axes.middleware.AxesMiddleware",
]

# Widgets render through TEMPLATES, so a widget of ours keeps its template in templates/ with the others
# (the search pickers' templates/crm/widgets/search_select.html); plain <input>s are written in Python, byte for
# byte as Django's template writes them (`crm.forms.FormRenderer`).
FORM_RENDERER = "crm.forms.FormRenderer"

ROOT_URLCONF = "salesmgmt.urls"
WSGI_APPLICATION = "salesmgmt.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # Every template's |floatformat (Django's, written faster) and {% id_url %}: salesmgmt/templatetags/fast.py
            "builtins": ["salesmgmt.templatetags.fast"],
        },
    },
]

# Persistent connections: a web thread or a worker keeps its connection for DB_CONN_MAX_AGE seconds (0: one per
# request) instead of paying a PostgreSQL backend's start on every request; the health check, at the start of a
# request, replaces one the server closed meanwhile. DB_PGBOUNCER=1 behind PgBouncer in transaction pooling: the
# chunked reads (`.iterator()`: exports, CSV downloads) then fetch client-side, since a server-side cursor lives
# on one server connection and the next transaction may get another (see the README).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
        disable_server_side_cursors=env_bool("DB_PGBOUNCER", False),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Imports and splits write in bursts; a longer timeout avoids "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
elif not env_bool("DB_JIT", False) and not env_bool("DB_PGBOUNCER", False):
    # No JIT compilation: it pays off for long analytical queries, not these short ones, and a statement whose
    # estimate runs high (an alert evaluation of a few dozen nodes is estimated at tens of thousands of rows, and
    # runs in 2 ms) otherwise spends 50-180 ms compiling it. Sent at connection start (`-c jit=off`); PgBouncer
    # refuses such startup options, so behind it set it on the role or database instead:
    # ALTER ROLE <user> SET jit = off (see the README). DB_JIT=1 leaves PostgreSQL's default.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "crm.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: a username+IP pair locked out after failed logins is refused before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["salesmgmt.formats"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# The company currency: every total is converted into it with dated rates.
COMPANY_CURRENCY = env_str("COMPANY_CURRENCY", "CNY")
# From this amount (company currency) up, an open deal is a big-account project for the project analysis meeting
# (项目分析会), as is any 5-star deal; read through `coaching.selectors.big_deal_min_amount`.
PROJECT_REVIEW_MIN_AMOUNT = env_int("PROJECT_REVIEW_MIN_AMOUNT", 1_000_000)

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Development and tests serve static files straight from the app folders (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = WHITENOISE_USE_FINDERS
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

# Import limits (deal import wizard and commands, a plan's Excel import). A file is read row by row and
# refused at the first limit it crosses, so a file too big costs a web worker little time and memory.
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 20 * 1024 * 1024)  # the upload's size
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 100_000)  # data rows, header and empty rows not counted
IMPORT_MAX_COLUMNS = env_int("IMPORT_MAX_COLUMNS", 250)  # up to the last non-empty cell of any row
if min(IMPORT_MAX_BYTES, IMPORT_MAX_ROWS, IMPORT_MAX_COLUMNS) < 1:
    raise ImproperlyConfigured("IMPORT_MAX_BYTES, IMPORT_MAX_ROWS and IMPORT_MAX_COLUMNS must be >= 1")

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's Redis cache, except that Redis being down is a miss, not an error (salesmgmt/cache.py);
            # the timeouts keep a Redis that does not answer (a network partition) from holding requests up.
            "BACKEND": "salesmgmt.cache.TolerantRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
    # Every request reads its session: from Redis, with the database behind it (written through, read on a miss),
    # so sessions outlive a flushed cache, and a Redis outage (the cache misses) logs nobody out. Without Redis
    # each process has its own cache: sessions stay in the DB.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # Room for the kept subtree totals of a big company (crm/rollup.py: one entry per region and figure); locmem
    # culls a third of its entries when full (300 by default).
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 100_000}}
    }

# Pages read far more often than what they show changes (team pipeline, a deal, attainment) are kept in the cache
# under the versions of what they show, bumped after every commit that changes it (salesmgmt/freshness.py).
# PAGE_CACHE_SECONDS bounds an entry's life (a process that died between its commit and its bump).
PAGE_CACHE = env_bool("PAGE_CACHE", True)
PAGE_CACHE_SECONDS = env_int("PAGE_CACHE_SECONDS", 300)
# Company-wide deal figures (a director's review) are added up from each region's subtree total, kept in the cache
# under that region's version and recounted only when it moves (crm/rollup.py). ROLLUP_CACHE_SECONDS: their life.
ROLLUP_CACHE = env_bool("ROLLUP_CACHE", True)
ROLLUP_CACHE_SECONDS = env_int("ROLLUP_CACHE_SECONDS", 300)

# Celery: without a broker every task runs eagerly, in-process, so one laptop needs no Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Lets several deployments (or a CI run beside a developer's worker) share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
# Seconds of deal changes one recompute gathers (`salesmgmt.outbox`): the worker's drain waits until the oldest
# pending change is this old before it runs them all in one pass, so the moves of a second cost one pass, not one
# each; a change's figures are then about this old at most. 0: a drain runs what is pending at once. The wait is in
# the worker (no countdown message, which the worker held unacknowledged and lost when Redis restarted under it).
OUTBOX_DRAIN_DELAY = env_float("OUTBOX_DRAIN_DELAY", 1.0)
if not 0 <= OUTBOX_DRAIN_DELAY <= 10:
    raise ImproperlyConfigured("OUTBOX_DRAIN_DELAY must be between 0 and 10 seconds")
# A task's message is acknowledged when the task ends (acks_late), so work a worker was doing when it died
# is delivered again: every task is idempotent (ids in, upserts, claims), so a second run changes nothing.
CELERY_TASK_ACKS_LATE = True
# A pool child killed mid-task (OOM, SIGKILL) puts its message back at once instead of acknowledging it.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message reserved at a time: a crashed worker strands only the task it was running.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless this is set: a new
# PostgreSQL backend per task (two a deal move, with its alert evaluation), each planning its first queries with
# empty catalog caches. The worker keeps its connection instead, by the web's rule (`DB_CONN_MAX_AGE`, health
# checks): `salesmgmt.celery` closes it around a task only when it is too old or unusable
# (`django.db.close_old_connections`), as Django does around a request. Celery closes it once every this many tasks.
CELERY_DB_REUSE_MAX = 100_000
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Web requests must not hang when the broker is down: fail fast, the outbox catches up.
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 1.0)
# A message a worker took and never acknowledged (the whole worker was killed) goes back to the queue
# once it is `visibility_timeout` seconds old; Redis's default is an hour, an hour of wrong figures.
# It must stay longer than the longest task: a task still running past it is started a second time
# by another worker (harmless, tasks are idempotent, but wasted). The longest today take seconds: a
# plan's first attainment build at 5,000 reps ~3 s, the nightly reconcile under 1 s per such plan, an
# import's commit (claimed first, so a second delivery leaves a running one alone) ~10 s per 10,000
# rows. No task is sent with a countdown or an eta (one would wait unacknowledged and be redelivered).
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 300)
# How often a worker looks for such messages (Redis's default: every 100 s).
CELERY_UNACKED_RESTORE_INTERVAL = env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10)
if CELERY_VISIBILITY_TIMEOUT < 1 or CELERY_UNACKED_RESTORE_INTERVAL < 1:
    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT and CELERY_UNACKED_RESTORE_INTERVAL must be >= 1 second")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "max_retries": 0,
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": CELERY_UNACKED_RESTORE_INTERVAL,
    "unacked_restore_throttle": 1,  # scan on every sweep, not every 10th
}
CELERY_BEAT_SCHEDULE: dict = {
    "flush-outbox": {"task": "salesmgmt.flush_outbox", "schedule": 60.0},
    "targets-reconcile-attainment": {"task": "targets.reconcile_all", "schedule": crontab(hour=2, minute=0)},
    # Monday 07:00 (CELERY_TIMEZONE, Asia/Shanghai by default); hourly until 12:30 the job catches up whoever a
    # failure or a crash left without theirs (sent ones are never sent again: `coaching.digest`).
    "coaching-weekly-digest": {
        "task": "coaching.send_weekly_digests",
        "schedule": crontab(day_of_week="mon", hour=7, minute=0),
    },
    "coaching-weekly-digest-catch-up": {
        "task": "coaching.send_weekly_digests",
        "schedule": crontab(day_of_week="mon", hour="8-12", minute=30),
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "salesmgmt.security.ExpiringTokenAuthentication",
    ],
    # Requests per client (a signed-in user, else the IP address), counted in the default cache (Redis in
    # production); over the rate a call is answered 429 with Retry-After. The token endpoint has its own, stricter
    # rate per IP address, on top of the login lockout.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "NUM_PROXIES": PROXY_COUNT if BEHIND_PROXY else None,
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_RATE_ANON", "60/min"),
        "user": env_str("API_RATE_USER", "1000/min"),
        "auth_token": env_str("API_RATE_TOKEN", "10/min"),
    },
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "salesmgmt.api.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "salesmgmt.api.FilterBackend",
        "salesmgmt.api.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PARSER_CLASSES": ["salesmgmt.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "salesmgmt.schema.AutoSchema",
    "EXCEPTION_HANDLER": "salesmgmt.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "salesmgmt API",
    "DESCRIPTION": (
        "Sales target management: organisation, customers, pipeline, targets.\n\n"
        "Request bodies are JSON and each value has exactly the type its schema gives: a boolean is `true` or "
        '`false`, an id or integer a JSON integer, a date `"YYYY-MM-DD"`, and a decimal (amounts, weights, '
        'thresholds) a JSON string of digits such as `"1250.50"` (its pattern), never a JSON number. '
        "Anything else is a 400 naming the field."
    ),
    "VERSION": "1.0.0",
    # Every operation may answer 429 (a throttle); see salesmgmt.security.add_throttled_responses.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "salesmgmt.security.add_throttled_responses",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is served from drf-spectacular-sidecar's static files, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets used by fields of several names get one name each (and no collision warnings).
    "ENUM_NAME_OVERRIDES": {
        "TierEnum": "crm.models.Tier",
        "DriverEnum": "salesmgmt.lib.drivers.DRIVERS",
        "PlanStatusEnum": "targets.models.PlanStatus",
        "PlanPeriodKindEnum": "targets.models.PlanPeriodKind",
        "PeriodKindEnum": "targets.models.PeriodKind",
        "DimensionEnum": "targets.models.Dimension",
        "SplitMethodEnum": "targets.models.SplitMethod",
        "AdjustmentKindEnum": "targets.models.AdjustmentKind",
        "AdjustmentStatusEnum": "targets.models.AdjustmentStatus",
        "ActionStatusEnum": "targets.models.ActionStatus",
        "AlertKindEnum": "targets.models.AlertKind",
        "AlertSeverityEnum": "targets.models.AlertSeverity",
        "AlertStateEnum": "targets.models.AlertState",
        "ForecastLevelEnum": "coaching.models.ForecastLevel",
        "MeetingStatusEnum": "coaching.models.MeetingStatus",
        "ActionItemStatusEnum": "coaching.models.ActionItemStatus",
    },
}

# E-mail (alert notifications). Nothing set prints mails on the console; EMAIL_HOST switches to SMTP.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS or EMAIL_USE_SSL, not both")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "salesmgmt@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in e-mails are absolute: the address people open the app at.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

# --- abuse protection (see the README's security section) ---------------------------------------
# Login lockout (django-axes): AXES_FAILURE_LIMIT failed logins of one username from one IP address, on the login
# form or the token endpoint, lock that pair out for AXES_COOLOFF_MINUTES (each try while locked starts the
# cool-off again). An administrator unlocks earlier in the admin (Axes: access attempts) or with
# `manage.py axes_reset` / `axes_reset_username <name>`. The attempts are kept in the database.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be >= 1")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful login clears the pair's failures
AXES_LOCKOUT_CALLABLE = "salesmgmt.security.lockout_response"
AXES_VERBOSE = False
# The client's address (the lockout, the password-reset rate, the API throttles: BEHIND_PROXY, PROXY_COUNT above).
AXES_CLIENT_IP_CALLABLE = "salesmgmt.security.client_ip"
# Password reset requests, per client IP address and per e-mail address (the mails cost and annoy).
PASSWORD_RESET_RATE = env_str("PASSWORD_RESET_RATE", "5/hour")
# API tokens expire this many hours after they were issued; obtaining a token again issues a new one.
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 24 * 7)
if API_TOKEN_TTL_HOURS < 1:
    raise ImproperlyConfigured("API_TOKEN_TTL_HOURS must be >= 1")

# Content-Security-Policy (django-csp): scripts only from this site's files (no inline script, no event handler
# attribute, no eval); styles may be inline (plotly sets styles on the charts it draws). The API docs (Swagger UI)
# are served from drf-spectacular-sidecar's static files with their start-up script as a file: no exception.
csp_report_uri = env_str("CSP_REPORT_URI")  # lower case: django-csp reads every CSP_* setting as its old format
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
    | ({"report-uri": [csp_report_uri]} if csp_report_uri else {}),
}

# HTTPS hardening, all on with HTTPS=1 (production behind TLS).
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING").upper()},
}
