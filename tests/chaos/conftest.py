"""Options of the chaos test (how many runs, which seed), and its PostgreSQL guard.

    DATABASE_URL=$KILN_TEST_POSTGRES_URL pytest tests/chaos [--chaos-runs=2000] [--chaos-seed=7]

``KILN_CHAOS_RUNS`` and ``KILN_CHAOS_SEED`` do the same from the environment (the
options are known to pytest only when tests/chaos is named on its command line).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

DEFAULT_RUNS = 200
HERE = Path(__file__).parent


@dataclass(frozen=True)
class ChaosOptions:
    runs: int
    seed: int


_options = pytest.StashKey[ChaosOptions]()


def pytest_addoption(parser):
    group = parser.getgroup("chaos", "the chaos test (tests/chaos)")
    group.addoption(
        "--chaos-runs",
        type=int,
        default=None,
        help=f"runs the chaos test posts (default KILN_CHAOS_RUNS or {DEFAULT_RUNS})",
    )
    group.addoption(
        "--chaos-seed",
        type=int,
        default=None,
        help="seed of the chaos test's faults and timings (default KILN_CHAOS_SEED or random)",
    )


def options(config: pytest.Config) -> ChaosOptions:
    """The same for the whole session: the seed is drawn once and printed."""
    if _options not in config.stash:
        runs = config.getoption("chaos_runs", default=None) or int(
            os.environ.get("KILN_CHAOS_RUNS") or DEFAULT_RUNS
        )
        seed = config.getoption("chaos_seed", default=None)
        if seed is None:
            seed = int(os.environ.get("KILN_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
        config.stash[_options] = ChaosOptions(runs=runs, seed=seed)
    return config.stash[_options]


def pytest_collection_modifyitems(config, items):
    # The default timeout (pyproject.toml) is for ordinary tests; this one's time grows
    # with the number of runs (2,000 took 9 minutes on a busy 2-core machine).
    budget = 240 + options(config).runs * 0.5
    for item in items:
        if item.path == HERE / "test_chaos.py" and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(budget))


@pytest.fixture
def chaos_options(request) -> ChaosOptions:
    return options(request.config)


@pytest.fixture
def postgres_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(
            "the chaos test runs on PostgreSQL only: two workers, beat and the test write "
            "at once, which SQLite serialises with 'database is locked'. Run it with "
            'DATABASE_URL=$KILN_TEST_POSTGRES_URL (eval "$(bash scripts/postgres.sh start)").'
        )
