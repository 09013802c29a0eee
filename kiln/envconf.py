"""Typed readers for settings taken from the environment.

A value may also come from a file named by ``NAME_FILE`` (Docker and Kubernetes secrets),
which wins over ``NAME``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.text import parse_bool


def env(name: str, default: str = "") -> str:
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = env(name, "").strip()
    if not value:
        return default
    parsed = parse_bool(value)
    if parsed is None:
        raise ValueError(f"{name} must be true or false, not {value.lower()!r}")
    return parsed


def envint(name: str, default: int) -> int:
    value = env(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


def envfloat(name: str, default: float) -> float:
    value = env(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def local_secret(path: Path, make) -> str:
    """Read a secret kept in a local file, creating it (mode 0600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(make())
    return path.read_text().strip()


def random_token() -> str:
    return secrets.token_urlsafe(50)
