"""The chaos test: runs posted through the run API while workers are killed, Redis goes
away and the SMTP server misbehaves; every run ends sent once, failed with a reason or
unknown with a reason, and none is lost or sent twice. tests/chaos/README.md explains
the rig and the accounting."""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter

import pytest
from django.db import connection

from queries.models import FINISHED, ApiToken, QueryRun, RunStatus
from tests.chaos.accounting import DOUBLED, LOST, MISREPORTED, Accounting, RunState
from tests.chaos.rig import TIMINGS, Monkey, Rig, postgres_url
from tests.support.apps import make_app, welcome_inputs
from tests.support.services import use_broker

pytestmark = pytest.mark.redis

#: Runs posted a second at most; a small N is spread over MIN_POSTING_SECONDS so that
#: the monkey has time to strike while runs drain.
POSTS_PER_SECOND = 25
MIN_POSTING_SECONDS = 20
#: Posting waits while more runs than this are queued: the workers' pace on a loaded
#: machine sets the test's. A backlog older than the sweep's grace period would be
#: enqueued again whole at every sweep (tests/chaos/README.md, "Backpressure").
MAX_BACKLOG = 20
#: The longest posting waits for the backlog to shrink, should the workers stall.
MAX_STALL_SECONDS = 120


def recipient(index: int) -> str:
    """Each run's own envelope recipient: how the SMTP server tells runs apart."""
    return f"run-{index}@example.com"


@pytest.fixture
def rig(postgres_only, chaos_options, transactional_db, settings, caplog):
    # aiosmtpd logs every command at INFO: thousands of lines in a failure's report.
    caplog.set_level(logging.WARNING, logger="mail.log")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KILN_RUN_MAX_ATTEMPTS = int(TIMINGS["KILN_RUN_MAX_ATTEMPTS"])
    settings.KILN_RUNS_PER_USER_PER_MINUTE = 0
    settings.KILN_RUNS_PER_APP_PER_HOUR = 0
    settings.KILN_API_CALLS_PER_MINUTE = 0
    rig = Rig.start(chaos_options.seed, postgres_url(connection.settings_dict))
    previous = use_broker(rig.redis.url, eager=False)
    try:
        yield rig
    finally:
        rig.stop()
        use_broker(previous[0], eager=previous[1])


def test_chaos_loses_nothing_and_sends_nothing_twice(rig, chaos_options, client, team, capsys):
    runs, seed = chaos_options.runs, chaos_options.seed
    say = Printer(capsys)
    say(
        f"chaos test: {runs} runs, seed {seed} "
        f"(again: pytest tests/chaos --chaos-runs={runs} --chaos-seed={seed})"
    )
    app, query = make_app(team.workspace, rig.smtp.port)
    key = ApiToken.issue(team.teammate, "chaos")[1]
    url = f"/api/v1/apps/{app.slug}/queries/send_welcome/runs"

    started = time.monotonic()
    monkey = Monkey(rig, random.Random(f"monkey-{seed}"), started)
    monkey.start()
    run_index: dict[int, int] = {}
    try:
        spacing = max(runs / POSTS_PER_SECOND, MIN_POSTING_SECONDS) / runs
        for index in range(runs):
            time.sleep(max(0.0, started + index * spacing - time.monotonic()))
            wait_for_backlog(query)
            inputs = welcome_inputs(email=recipient(index))
            inputs["form1"]["data"]["name"] = f"run {index}"
            response = client.post(
                url,
                json.dumps({"inputs": inputs}),
                content_type="application/json",
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.status_code == 202, response.content
            run_index[response.json()["id"]] = index
        posted = time.monotonic() - started
        # The monkey goes on while the last runs drain, then everything is healed so
        # that the sweep can finish its work.
        wait_for(run_index, seconds=5)
    finally:
        monkey.stop()
        rig.heal()
    if monkey.error is not None:
        raise monkey.error
    tail = int(TIMINGS["KILN_RUN_STUCK_SECONDS"]) + 60 + runs * 0.05
    pending = wait_for(run_index, seconds=tail)
    drained = time.monotonic() - started
    # Late deliveries (a task redelivered after the end) would show now.
    time.sleep(2)
    rig.beat.stop()
    for worker in rig.workers:
        worker.stop()

    seen = rig.smtp.log.outcomes()
    # Each message the server took whole is the one its recipient's run built.
    index_of = {recipient(i): i for i in run_index.values()}
    mixed_up = [
        e
        for e in rig.smtp.log.events
        if e.subject and e.subject != f"Welcome, run {index_of.get(e.recipient)}!"
    ]
    states = [
        RunState(run_id, status, error, seen.get(recipient(run_index[run_id]), Counter()))
        for run_id, status, error in QueryRun.objects.filter(pk__in=run_index).values_list(
            "pk", "status", "error"
        )
    ]
    accounting = Accounting.of(states)
    retried = QueryRun.objects.filter(pk__in=run_index, attempts__gt=1).count()
    say(
        f"posted in {posted:.0f} s, all finished after {drained:.0f} s "
        f"({pending} still pending); {monkey.count('SIGKILL')} workers killed, "
        f"{monkey.count('stop Redis')} Redis restarts, "
        f"{monkey.count('exited by itself')} processes exited by themselves; server faults: "
        + ", ".join(f"{k} {v}" for k, v in sorted(rig.smtp.log.faults.items()))
        + f"; {retried} runs needed more than one attempt"
    )
    say(accounting.table(f"ACCOUNTING TABLE ({runs} runs, seed {seed})"))
    logs = ", ".join(str(p.log_path) for p in (*rig.workers, rig.beat))
    say(f"logs (removed when the test passes): {logs}")
    bad = accounting.bad_runs()
    if bad or mixed_up:
        say("chaos timeline: " + "; ".join(f"+{t:.1f} s {w}" for t, w in monkey.timeline))
        say(histories(bad, run_index, rig, started))
    assert accounting.total == runs
    assert not mixed_up, mixed_up[:5]
    assert not accounting.unknown_without_reason()
    assert (accounting.count(LOST), accounting.count(DOUBLED)) == (0, 0)
    assert accounting.count(MISREPORTED) == 0
    rig.remove_logs()  # kept, and named in the output, when the test fails


def wait_for_backlog(query) -> None:
    stall_until = time.monotonic() + MAX_STALL_SECONDS
    queued = QueryRun.objects.filter(query=query, status=RunStatus.QUEUED)
    while queued.count() > MAX_BACKLOG and time.monotonic() < stall_until:
        time.sleep(0.05)


def wait_for(run_index: dict[int, int], seconds: float) -> int:
    """Wait until every run has finished or ``seconds`` passed; the runs still pending."""
    deadline = time.monotonic() + seconds
    while True:
        pending = QueryRun.objects.filter(pk__in=run_index).exclude(status__in=FINISHED).count()
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.25)


def histories(bad: list[RunState], run_index, rig: Rig, started: float) -> str:
    """Each bad run's story: its row, what the server saw, its lines in the workers' logs
    (by run id and by its last task id)."""
    lines = ["RUNS THAT BROKE THE RULES"]
    for state in bad:
        run = QueryRun.objects.get(pk=state.run_id)
        address = recipient(run_index[state.run_id])
        lines.append(
            f"run {run.pk} ({address}): status {run.status}, attempts {run.attempts}, "
            f"error {run.error!r}, created {run.created_at:%H:%M:%S.%f}, "
            f"started {run.started_at and f'{run.started_at:%H:%M:%S.%f}'}, "
            f"finished {run.finished_at and f'{run.finished_at:%H:%M:%S.%f}'}"
        )
        lines.extend(f"  failure {f}" for f in run.failures)
        lines.extend(
            f"  server at +{e.at - started:.2f} s: {e.outcome} {e.subject!r}"
            for e in rig.smtp.log.events
            if e.recipient == address
        )
        marks = [f"run {run.pk} "] + ([run.task_id] if run.task_id else [])
        for process in rig.workers:
            lines.extend(
                f"  {process.name}: {line}"
                for line in process.output().splitlines()
                if any(mark in line for mark in marks)
            )
    return "\n".join(lines)


class Printer:
    """Prints past pytest's capture, so the table shows without -s."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, text: str) -> None:
        with self.capsys.disabled():
            print("\n" + text, flush=True)
