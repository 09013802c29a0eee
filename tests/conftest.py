from __future__ import annotations

import os

import pytest

# The tests (and the browser tests' live server) talk plain http: secure-only cookies
# would never come back. The processes the tests start (Celery workers, settings checks)
# inherit this; this process read its settings before, so _plain_http_cookies sets them.
os.environ.setdefault("SECURE_COOKIES", "false")

from datasources.plugins.smtp.config import Security
from tests.support.certs import make_certificates
from tests.support.services import CeleryWorker, RedisServer, use_broker
from tests.support.smtp_server import SilentServer, SmtpServer


@pytest.fixture(autouse=True)
def _any_smtp_port(settings):
    # Test SMTP servers listen on free ports; test_guard checks the port limit itself.
    settings.KILN_SMTP_PORTS = ["any"]


@pytest.fixture(autouse=True)
def _plain_http_cookies(settings):
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # The rate limits count on the cache, by user or token id: a test must not inherit
    # another test's counts (ids repeat once the database is reset).
    from django.core.cache import cache

    cache.clear()


#: The retry schedule the tests run with: a few seconds apart and no window beyond the
#: query's timeout, so that a run the tests fail gives up within a minute, not an hour.
#: Tests of the mail server's schedule itself set their own.
FAST_RETRIES = {
    "KILN_RUN_RETRY_BASE_SECONDS": 5.0,
    "KILN_RUN_RETRY_MAX_SECONDS": 300.0,
    "KILN_RUN_RETRY_WINDOW_SECONDS": 0,
    "KILN_RUN_MAX_ATTEMPTS": 5,
}


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    for name, value in FAST_RETRIES.items():
        setattr(settings, name, value)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def trust_test_ca(certs, monkeypatch):
    """Makes ssl.create_default_context() trust the test CA (and only it)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def smtp_factory(certs):
    """Starts real aiosmtpd servers: ``smtp_factory(security=..., users=...)``."""
    servers: list[SmtpServer] = []

    def start(**kwargs) -> SmtpServer:
        if kwargs.get("security", Security.NONE) != Security.NONE:
            kwargs.setdefault("certs", certs)
        server = SmtpServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(smtp_factory) -> SmtpServer:
    """A plain SMTP server with no TLS and no AUTH."""
    return smtp_factory()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


def _database_url(db_settings: dict) -> str:
    if db_settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db_settings['NAME']}"
    user, password = db_settings.get("USER", ""), db_settings.get("PASSWORD", "")
    auth = f"{user}:{password}@" if user else ""
    host = db_settings.get("HOST") or "localhost"
    port = db_settings.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{db_settings['NAME']}"


@pytest.fixture
def celery_worker(redis_server, transactional_db, settings):
    """A real Celery worker process on the real Redis, sharing the test database.

    While it runs, this process enqueues to the same Redis instead of running eagerly.
    """
    from django.db import connection

    previous = use_broker(redis_server.url, eager=False)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    worker = CeleryWorker(
        redis_server.url,
        _database_url(connection.settings_dict),
        # Retries after a fraction of a second, so that tests see them; plugins a test
        # registered (settings.KILN_EXTRA_PLUGINS) exist in the worker too.
        extra_env={
            **{name: str(value) for name, value in FAST_RETRIES.items()},
            "KILN_RUN_RETRY_BASE_SECONDS": "0.3",
            "KILN_EXTRA_PLUGINS": ",".join(
                f"{kind}={path}" for kind, path in settings.KILN_EXTRA_PLUGINS.items()
            ),
        },
    )
    try:
        yield worker.start()
    finally:
        worker.stop()
        use_broker(previous[0], eager=previous[1])


@pytest.fixture
def team(db):
    from tests.support.actors import make_team

    return make_team()
