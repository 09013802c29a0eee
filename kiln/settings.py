"""Kiln settings: every value comes from the environment, with embedded defaults.

With nothing set, Kiln runs on SQLite with Celery tasks executed eagerly in the web
process, so ``manage.py runserver`` alone is a working system. ``.env.example`` lists
every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet

from kiln.envconf import env, envbool, envfloat, envint, envlist, local_secret, random_token
from kiln.production import require_production_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("KILN_VAR_DIR", str(BASE_DIR / "var")))

# Production refuses the one-machine defaults below (generated secrets, SQLite, eager
# Celery) rather than fall back to them: kiln/production.py names what is missing.
KILN_PRODUCTION = envbool("KILN_PRODUCTION", False)
if KILN_PRODUCTION:
    require_production_settings()

DEBUG = envbool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY") or local_secret(VAR_DIR / "secret_key", random_token)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

# Keys for django-encrypted-model-fields. Several comma-separated keys rotate: the first
# encrypts, all decrypt.
FIELD_ENCRYPTION_KEY = envlist("FIELD_ENCRYPTION_KEY") or [
    local_secret(VAR_DIR / "field_encryption.key", lambda: Fernet.generate_key().decode())
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "workspaces",
    "datasources",
    "builder",
    "queries",
    "devmailbox",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "kiln.urls"
WSGI_APPLICATION = "kiln.wsgi.application"

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
                "kiln.context_processors.kiln",
                "workspaces.context_processors.workspaces",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'kiln.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker process started by a test sees the
    # test database too; one per test process, so that two runs never share one.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-kiln-{os.getpid()}.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        # WAL lets the web process read while a worker writes; IMMEDIATE takes the write
        # lock at BEGIN, so two writers wait instead of failing with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request without it
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# Uploaded files (the workspaces' own files) live in MEDIA_ROOT on one machine; with
# KILN_S3_BUCKET set, in an S3-compatible bucket that every web and worker machine reaches
# (docs/deployment.md). Keys left empty fall back to boto3's own lookup
# (AWS_ACCESS_KEY_ID, an instance role).
KILN_S3_BUCKET = env("KILN_S3_BUCKET")
KILN_S3_ADDRESSING_STYLE = env("KILN_S3_ADDRESSING_STYLE").strip().lower()
if KILN_S3_ADDRESSING_STYLE not in ("", "auto", "path", "virtual"):
    raise ValueError(
        f"KILN_S3_ADDRESSING_STYLE must be path, virtual or auto, not {KILN_S3_ADDRESSING_STYLE!r}"
    )
_file_storage = (
    {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": KILN_S3_BUCKET,
            "endpoint_url": env("KILN_S3_ENDPOINT_URL") or None,
            "region_name": env("KILN_S3_REGION") or None,
            "access_key": env("KILN_S3_ACCESS_KEY_ID") or None,
            "secret_key": env("KILN_S3_SECRET_ACCESS_KEY") or None,
            "location": env("KILN_S3_PREFIX"),
            # "path" for servers that take no bucket in the host name (MinIO, Garage).
            "addressing_style": KILN_S3_ADDRESSING_STYLE or None,
            # Private objects, reached only through Kiln (or a signed link); a new file
            # never replaces another of the same name.
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
    if KILN_S3_BUCKET
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
)
STORAGES = {
    "default": _file_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
# Secure by default; a plain-http dev server or test run says SECURE_COOKIES=false.
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "SAMEORIGIN"
# SAMEORIGIN on purpose: the dev mailbox shows a message's HTML body in a sandboxed frame
# of Kiln's own origin (CSP frame-ancestors 'self' says the same), so check --deploy's
# advice to DENY would break it.
SILENCED_SYSTEM_CHECKS = ["security.W019"]
SECURE_CONTENT_TYPE_NOSNIFF = True
# HSTS is only sent on https responses, so a long default costs nothing over http.
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
# A load balancer's health check talks plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# "HTTP_X_FORWARDED_PROTO,https" behind a proxy that sets it; trusting it without one
# would let any client claim https.
_proxy_ssl_header = envlist("SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if len(_proxy_ssl_header) == 2 else None

# A strict policy: nothing inline, so htmx's indicator style is off (templates/base.html)
# and every script and style is a static file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'self'"],
    }
}

# The cache holds the rate limits' counters: Redis when there is one, so that every
# process counts together; this process's memory otherwise.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("REDIS_URL"),
        "KEY_PREFIX": "kiln",
    }
    if env("REDIS_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "kiln"}
}
RATELIMIT_USE_CACHE = "default"

# Limits (docs/security.md "Limits"). Runs are counted in the database (QueryRun), the
# others on the cache.
KILN_RUNS_PER_USER_PER_MINUTE = envint("KILN_RUNS_PER_USER_PER_MINUTE", 30)
KILN_RUNS_PER_APP_PER_HOUR = envint("KILN_RUNS_PER_APP_PER_HOUR", 1000)
# Mail merges (docs/merge.md): at most this many rows in one merge, and its emails
# spaced to at most this many a minute (0: as fast as the workers go). A merge counts
# as one run for KILN_RUNS_PER_USER_PER_MINUTE and as its rows for the app's hourly cap.
KILN_MERGE_MAX_ROWS = envint("KILN_MERGE_MAX_ROWS", 10000)
KILN_MERGE_RATE_PER_MINUTE = envint("KILN_MERGE_RATE_PER_MINUTE", 0)
KILN_TEST_CONNECTION_PER_MINUTE = envint("KILN_TEST_CONNECTION_PER_MINUTE", 10)
KILN_API_CALLS_PER_MINUTE = envint("KILN_API_CALLS_PER_MINUTE", 60)

# Sign-in throttling (django-axes): after KILN_SIGNIN_FAILURE_LIMIT failures for one
# username, or from one address, sign-in is refused for KILN_SIGNIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("KILN_SIGNIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envfloat("KILN_SIGNIN_COOLOFF_MINUTES", 15.0))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "kiln.signin.locked_out"
AXES_VERBOSE = False

# Celery: with no REDIS_URL tasks run eagerly, in-process. The times below nest, so
# that a task is never delivered twice while its first delivery still runs and the
# sweep never gives up on a run a worker may still send (docs/reliability.md;
# queries/checks.py refuses values that do not nest):
#   KILN_RUN_TIMEOUT_MAX_SECONDS <= soft time limit < time limit < visibility timeout
#   time limit < KILN_RUN_STUCK_SECONDS
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged when it ends, not when it starts: a worker that dies takes no
# task with it; the claim (queries/outbox.py) makes a second delivery do nothing.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: a worker stopping (SIGTERM) holds no others.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker whose Redis went away waits for it, however long, instead of exiting.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# The longest timeout a query may have (its whole budget, retries included).
KILN_RUN_TIMEOUT_MAX_SECONDS = envint("KILN_RUN_TIMEOUT_MAX_SECONDS", 600)
CELERY_TASK_SOFT_TIME_LIMIT = envint("KILN_TASK_SOFT_TIME_LIMIT", 630)
CELERY_TASK_TIME_LIMIT = envint("KILN_TASK_TIME_LIMIT", 660)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis hands an unacknowledged task to another worker after this long: each
    # worker looks for such tasks every KILN_BROKER_RESTORE_EVERY_SECONDS.
    "visibility_timeout": envint("KILN_BROKER_VISIBILITY_TIMEOUT", 3600),
    "unacked_restore_interval": envint("KILN_BROKER_RESTORE_EVERY_SECONDS", 10),
    "unacked_restore_throttle": 1,
    # A broker that is down is noticed in a fraction of a second: a request that stores
    # a run answers at once and the sweep enqueues it later.
    "socket_connect_timeout": envfloat("KILN_BROKER_CONNECT_TIMEOUT", 1.0),
    "socket_timeout": envfloat("KILN_BROKER_SOCKET_TIMEOUT", 1.0),
}
KILN_SWEEP_EVERY_SECONDS = envfloat("KILN_SWEEP_EVERY_SECONDS", 30.0)
CELERY_BEAT_SCHEDULE = {
    "sweep-outbox": {"task": "queries.sweep_outbox", "schedule": KILN_SWEEP_EVERY_SECONDS},
}

# The outbox (queries.QueryRun): retries of transient failures, and the sweep. A mail
# server's schedule: a greylisting server (451) wants the retry minutes later, so the
# first one comes after about a minute, each next one twice as late (up to the cap),
# for as long as the window lasts after the query's own timeout (docs/reliability.md).
KILN_RUN_RETRY_BASE_SECONDS = envfloat("KILN_RUN_RETRY_BASE_SECONDS", 60.0)
KILN_RUN_RETRY_MAX_SECONDS = envfloat("KILN_RUN_RETRY_MAX_SECONDS", 900.0)
KILN_RUN_RETRY_WINDOW_SECONDS = envint("KILN_RUN_RETRY_WINDOW_SECONDS", 3600)
# Enough for the window with the default schedule (about 8 attempts in an hour).
KILN_RUN_MAX_ATTEMPTS = envint("KILN_RUN_MAX_ATTEMPTS", 10)
# A waiting run whose task has not run this long after it was due is enqueued again.
KILN_SWEEP_GRACE_SECONDS = envint("KILN_SWEEP_GRACE_SECONDS", 60)
# The sweep enqueues overdue runs again only up to this many tasks in the broker's queue.
KILN_SWEEP_BATCH = envint("KILN_SWEEP_BATCH", 500)
# Scheduled sends (a query's send_at): how far ahead a run may be scheduled, and how far
# in the past a send_at may be and still mean "now" (a clock a little behind, a slow form).
KILN_SEND_AT_MAX_DAYS = envint("KILN_SEND_AT_MAX_DAYS", 366)
KILN_SEND_AT_PAST_SLACK_SECONDS = envint("KILN_SEND_AT_PAST_SLACK_SECONDS", 60)
# A run still "sending" after this long lost its worker: marked unknown, never resent.
KILN_RUN_STUCK_SECONDS = envint("KILN_RUN_STUCK_SECONDS", 900)
# How many reverse proxies in front of Kiln add to X-Forwarded-For (the audit log's
# "from where"); 0 believes only the connection's own address.
KILN_TRUSTED_PROXY_COUNT = envint("KILN_TRUSTED_PROXY_COUNT", 0)
# The longest ?wait= the run API honours.
KILN_API_MAX_WAIT_SECONDS = envint("KILN_API_MAX_WAIT_SECONDS", 30)
# A page's click waits this long for the run it started (woken by its end) to answer
# with the result; a run still going then gets a poller, whose requests each wait up to
# KILN_VIEWER_POLL_WAIT_SECONDS (a long poll). Each waiting page holds a web thread.
KILN_VIEWER_CLICK_WAIT_SECONDS = envfloat("KILN_VIEWER_CLICK_WAIT_SECONDS", 1.0)
KILN_VIEWER_POLL_WAIT_SECONDS = envfloat("KILN_VIEWER_POLL_WAIT_SECONDS", 5.0)

# Outbound SMTP guard (see docs/smtp.md). Metadata and link-local addresses are always
# refused; loopback and private ranges are allowed unless switched off, since internal
# apps often relay through an internal SMTP server.
KILN_SMTP_ALLOW_PRIVATE = envbool("KILN_SMTP_ALLOW_PRIVATE", True)
KILN_SMTP_ALLOW_LOOPBACK = envbool("KILN_SMTP_ALLOW_LOOPBACK", True)
# Ports an SMTP datasource may use; "any" lifts the limit (tests use free ports).
KILN_SMTP_PORTS = envlist("KILN_SMTP_PORTS", "25,465,587,1025,2525")
KILN_SMTP_MAX_RECIPIENTS = envint("KILN_SMTP_MAX_RECIPIENTS", 500)
KILN_SMTP_MAX_ATTACHMENT_BYTES = envint("KILN_SMTP_MAX_ATTACHMENT_BYTES", 25 * 1024 * 1024)
# The largest JSON body the run API reads (Django's DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB,
# still bounds every other request): the attachment limit as base64 data URLs, plus 4 MB
# for the other inputs. Larger files go as multipart/form-data.
KILN_API_MAX_BODY_BYTES = envint(
    "KILN_API_MAX_BODY_BYTES", KILN_SMTP_MAX_ATTACHMENT_BYTES * 4 // 3 + 4 * 1024 * 1024
)
KILN_SMTP_DEFAULT_TIMEOUT = envint("KILN_SMTP_DEFAULT_TIMEOUT", 30)
# Seconds an SMTP connection is kept open after a send, for the next send through the
# same server and user in the same process (RSET between messages); 0: one per send.
KILN_SMTP_REUSE_SECONDS = envint("KILN_SMTP_REUSE_SECONDS", 30)

# OAuth2 for SMTP (docs/smtp.md "OAuth2 (Gmail and Microsoft 365)"): the providers'
# endpoints ({tenant} is the datasource's Microsoft tenant), and how long a token
# request may take. KILN_PUBLIC_URL (https://kiln.example.com) is where browsers reach
# this deployment: with it, a datasource page offers "Connect with Google / Microsoft",
# whose redirect URI is KILN_PUBLIC_URL + /oauth2/callback/.
KILN_PUBLIC_URL = env("KILN_PUBLIC_URL").rstrip("/")
KILN_OAUTH2_GOOGLE_TOKEN_URL = env(
    "KILN_OAUTH2_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"
)
KILN_OAUTH2_GOOGLE_AUTHORIZE_URL = env(
    "KILN_OAUTH2_GOOGLE_AUTHORIZE_URL", "https://accounts.google.com/o/oauth2/v2/auth"
)
KILN_OAUTH2_MICROSOFT_TOKEN_URL = env(
    "KILN_OAUTH2_MICROSOFT_TOKEN_URL",
    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
)
KILN_OAUTH2_MICROSOFT_AUTHORIZE_URL = env(
    "KILN_OAUTH2_MICROSOFT_AUTHORIZE_URL",
    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
)
KILN_OAUTH2_TIMEOUT = envfloat("KILN_OAUTH2_TIMEOUT", 10.0)
if KILN_PUBLIC_URL:
    # "Connect" posts a form answered by a redirect to the provider's sign-in page:
    # browsers hold that redirect to the policy's form-action.
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"] += [
        "{0.scheme}://{0.netloc}".format(urlsplit(url))
        for url in (KILN_OAUTH2_GOOGLE_AUTHORIZE_URL, KILN_OAUTH2_MICROSOFT_AUTHORIZE_URL)
    ]

# Datasource plugins outside datasources/plugins/ ("kind=dotted.path.Class", comma
# separated): the tests' own plugin, passed on to the Celery worker they start.
KILN_EXTRA_PLUGINS = dict(
    item.split("=", 1) for item in envlist("KILN_EXTRA_PLUGINS") if "=" in item
)

# The built-in dev mailbox (python manage.py devmailbox) and its pages.
KILN_DEVMAILBOX = envbool("KILN_DEVMAILBOX", True)
KILN_DEVMAILBOX_HOST = env("KILN_DEVMAILBOX_HOST", "127.0.0.1")
KILN_DEVMAILBOX_PORT = envint("KILN_DEVMAILBOX_PORT", 1025)

# Kiln's own email (workspace invitations), by default to the built-in dev mailbox.
EMAIL_HOST = env("EMAIL_HOST", KILN_DEVMAILBOX_HOST)
EMAIL_PORT = envint("EMAIL_PORT", KILN_DEVMAILBOX_PORT)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Kiln <kiln@localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}
