from __future__ import annotations

import os
import stat

import pytest

from kiln.envconf import env, envbool, envint, envlist, local_secret


def test_a_secret_is_generated_once_with_mode_0600(tmp_path):
    path = tmp_path / "var" / "key"
    first = local_secret(path, lambda: "made-once")
    second = local_secret(path, lambda: "made-twice")
    assert first == second == "made-once"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_value_may_come_from_a_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    monkeypatch.setenv("KILN_X", "from-env")
    monkeypatch.setenv("KILN_X_FILE", str(secret))
    assert env("KILN_X") == "from-file"


def test_typed_readers(monkeypatch):
    monkeypatch.setenv("KILN_FLAG", "yes")
    monkeypatch.setenv("KILN_N", "12")
    monkeypatch.setenv("KILN_LIST", "a, b,,c")
    assert envbool("KILN_FLAG", False) is True
    assert envbool("KILN_UNSET", True) is True
    assert envint("KILN_N", 1) == 12
    assert envlist("KILN_LIST") == ["a", "b", "c"]


@pytest.mark.parametrize(("reader", "value"), [(envbool, "maybe"), (envint, "ten")])
def test_bad_values_name_the_variable(monkeypatch, reader, value):
    monkeypatch.setenv("KILN_BAD", value)
    with pytest.raises(ValueError, match="KILN_BAD must be"):
        reader("KILN_BAD", 0)


def test_debug_is_off_and_sqlite_and_eager_celery_by_default():
    from django.conf import settings

    if "DEBUG" not in os.environ:
        assert settings.DEBUG is False
    if "REDIS_URL" not in os.environ:
        assert settings.CELERY_TASK_ALWAYS_EAGER is True
    if "DATABASE_URL" not in os.environ:
        assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
