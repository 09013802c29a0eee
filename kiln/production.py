"""What production (``KILN_PRODUCTION=true``) requires of the environment.

The embedded defaults suit one machine: secrets generated into its ``var/``, SQLite, Celery
tasks run in the web process. In production several processes (and machines) share one
database, so a secret generated on one machine would not decrypt what another wrote, and
SQLite or an in-process queue would not be shared at all: settings refuse to start
instead of quietly falling back to them (docs/deployment.md).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from kiln.envconf import env, envbool

# Each variable production needs, and what to put in it.
REQUIRED = {
    "SECRET_KEY": (
        'the same long random string on every machine: python -c "import secrets; '
        'print(secrets.token_urlsafe(50))"'
    ),
    "FIELD_ENCRYPTION_KEY": (
        "the same Fernet key on every machine: python -c "
        '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
    ),
    "DATABASE_URL": "PostgreSQL, e.g. postgres://kiln:password@db.internal:5432/kiln",
    "REDIS_URL": "the Celery broker and the rate limits' cache, e.g. redis://redis:6379/0",
    "ALLOWED_HOSTS": "the names Kiln is served on, e.g. kiln.example.com",
}


def production_problems() -> list[str]:
    """One line per setting that production lacks or sets unsafely; empty when ready."""
    problems = [f"{name} is not set: {what}" for name, what in REQUIRED.items() if not env(name)]
    database = env("DATABASE_URL")
    if database and not database.startswith(("postgres://", "postgresql://", "pgsql://")):
        problems.append(
            f"DATABASE_URL must be PostgreSQL in production, not {database.split(':', 1)[0]}"
        )
    if envbool("DEBUG", False):
        problems.append("DEBUG is true: production shows no debug pages")
    return problems


def require_production_settings() -> None:
    """Raise ImproperlyConfigured naming every missing or unsafe setting at once."""
    problems = production_problems()
    if problems:
        raise ImproperlyConfigured(
            "KILN_PRODUCTION is true but the environment is not ready for production "
            "(docs/deployment.md):\n  - " + "\n  - ".join(problems)
        )
