"""Workers on other machines: two real worker processes, each with its own working
directory and its own MEDIA_ROOT (no disk shared with the web process or each other),
against one Redis and one PostgreSQL database, both send runs with attachments."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from queries.models import ApiToken, QueryRun
from tests.conftest import _database_url
from tests.support.apps import make_app, welcome_inputs
from tests.support.services import CeleryWorker, use_broker

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: DATABASE_URL=$KILN_TEST_POSTGRES_URL (scripts/postgres.sh)")


@pytest.fixture
def workers(postgres, redis_server, settings, tmp_path):
    previous = use_broker(redis_server.url, eager=False)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    started = []

    def start(name: str) -> CeleryWorker:
        home = tmp_path / name
        (home / "media").mkdir(parents=True)
        worker = CeleryWorker(
            redis_server.url,
            _database_url(connection.settings_dict),
            extra_env={"KILN_VAR_DIR": str(home), "MEDIA_ROOT": str(home / "media")},
            cwd=home,
            name=name,
        )
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        use_broker(previous[0], eager=previous[1])


def post_with_files(client, app, key, tag: str):
    data = {
        "inputs": json.dumps(welcome_inputs(f"{tag}@example.com")),
        "files1": [
            SimpleUploadedFile(f"{tag}.pdf", PDF, content_type="application/pdf"),
            SimpleUploadedFile(f"{tag}.txt", tag.encode(), content_type="text/plain"),
        ],
    }
    response = client.post(
        f"/api/v1/apps/{app.slug}/queries/send_welcome/runs",
        data,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def attachments_of(received) -> list[tuple[str, bytes]]:
    return [
        (part.get_filename(), part.get_payload(decode=True))
        for part in received.message.iter_attachments()
    ]


def test_two_workers_apart_both_send_attachments(
    workers, client, team, smtp_server, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "web-media"
    app, _ = make_app(team.workspace, smtp_server.port)
    key = ApiToken.issue(team.teammate)[1]

    # Each worker alone first, so that each is known to have sent one.
    first = workers("first")
    one = post_with_files(client, app, key, "one")
    assert QueryRun.objects.get(pk=one).wait(20).status == "sent", first.output()
    first.stop()
    second = workers("second")
    two = post_with_files(client, app, key, "two")
    assert QueryRun.objects.get(pk=two).wait(20).status == "sent", second.output()
    # Then both at once.
    workers("third")
    more = [post_with_files(client, app, key, f"more{i}") for i in range(6)]
    for run_id in more:
        run = QueryRun.objects.get(pk=run_id).wait(20)
        assert run.status == "sent", (run.error, second.output())

    by_recipient = {r.rcpt_tos[0].split("@")[0]: r for r in smtp_server.received}
    assert sorted(by_recipient) == sorted(["one", "two", *(f"more{i}" for i in range(6))])
    for tag, received in by_recipient.items():
        assert attachments_of(received) == [(f"{tag}.pdf", PDF), (f"{tag}.txt", tag.encode())]
    # Nothing was written to any disk: the bytes went through the database.
    for home in ("first", "second", "third", "web-media"):
        assert not any(p.is_file() for p in (tmp_path / home).rglob("*") if "media" in p.parts)
