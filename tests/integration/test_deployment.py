"""The documented production environment (deploy/kiln.env.example) passes Django's
deployment checks, and production refuses to start without what it needs.

Each check runs ``manage.py`` in a subprocess with only that environment, as gunicorn or
a Celery worker would start under systemd or compose.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "kiln.env.example"


def example_env() -> dict[str, str]:
    """The example file read as systemd's EnvironmentFile reads it: NAME=value lines."""
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def run_manage(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # Nothing of the test run's own environment (DATABASE_URL, SECURE_COOKIES) leaks in;
    # KILN_VAR_DIR points into the test's directory instead of /var/lib/kiln.
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env, "KILN_VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def with_secrets(env: dict[str, str]) -> dict[str, str]:
    """The example with its two secrets filled in, as the deployment guide says."""
    return {
        **env,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }


def test_the_documented_production_settings_pass_check_deploy(tmp_path):
    result = run_manage(
        tmp_path, with_secrets(example_env()), "check", "--deploy", "--fail-level", "WARNING"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_the_example_refuses_to_start_until_its_secrets_are_filled_in(tmp_path):
    result = run_manage(tmp_path, example_env(), "check")

    assert result.returncode != 0
    assert "KILN_PRODUCTION is true but the environment is not ready" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr
    assert "FIELD_ENCRYPTION_KEY is not set" in result.stderr
    assert "DATABASE_URL" not in result.stderr
    assert not (tmp_path / "var" / "secret_key").exists(), "no secret is generated"


def test_production_names_every_missing_or_unsafe_setting(tmp_path):
    env = {"KILN_PRODUCTION": "true", "DEBUG": "true", "DATABASE_URL": "sqlite:///kiln.db"}

    result = run_manage(tmp_path, env, "check")

    assert result.returncode != 0
    for line in (
        "SECRET_KEY is not set",
        "FIELD_ENCRYPTION_KEY is not set",
        "REDIS_URL is not set",
        "ALLOWED_HOSTS is not set",
        "DATABASE_URL must be PostgreSQL in production, not sqlite",
        "DEBUG is true",
    ):
        assert line in result.stderr


def test_a_bucket_moves_uploaded_files_to_s3_compatible_storage(tmp_path):
    env = with_secrets(example_env()) | {
        "KILN_S3_BUCKET": "kiln-files",
        "KILN_S3_ENDPOINT_URL": "https://s3.internal.example:9000",
        "KILN_S3_ADDRESSING_STYLE": "path",
        "KILN_S3_PREFIX": "uploads",
    }
    code = (
        "from django.core.files.storage import storages; import json; s = storages['default']; "
        "print(json.dumps([type(s).__module__ + '.' + type(s).__name__, s.bucket_name, "
        "s.endpoint_url, s.addressing_style, s.location, s.default_acl, s.file_overwrite]))"
    )

    result = run_manage(tmp_path, env, "shell", "--no-imports", "-c", code)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "storages.backends.s3.S3Storage",
        "kiln-files",
        "https://s3.internal.example:9000",
        "path",
        "uploads",
        None,
        False,
    ]


def test_a_wrong_addressing_style_names_the_variable(tmp_path):
    result = run_manage(tmp_path, {"KILN_S3_ADDRESSING_STYLE": "sideways"}, "check")

    assert result.returncode != 0
    assert "KILN_S3_ADDRESSING_STYLE must be path, virtual or auto, not 'sideways'" in result.stderr
