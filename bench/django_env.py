"""Django for a benchmark: settings in a fresh temporary directory, an empty SQLite
database there (unless DATABASE_URL is given), migrated."""

from __future__ import annotations

import os
import tempfile


def start_django(**env: str) -> str:
    """Set Kiln up in a new temporary directory and migrate its database; ``env`` adds
    to (or overrides) the environment. Returns the directory."""
    var = tempfile.mkdtemp(prefix="kiln-bench-")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "kiln.settings",
            "KILN_VAR_DIR": var,
            "DATABASE_URL": f"sqlite:///{var}/bench.sqlite3",
            "LOG_LEVEL": "WARNING",
            **env,
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return var
