"""Management commands: seed_demo, send_test_email, createsuperuser."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from datasources.models import Datasource
from workspaces.models import Role, Workspace


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_demo_is_safe_to_run_again(db, settings):
    run("seed_demo")
    user = get_user_model().objects.get(username="demo")
    user.set_password("changed-by-the-user")
    user.save()
    assert "kept" in run("seed_demo")
    user.refresh_from_db()
    assert user.check_password("changed-by-the-user")
    workspace = Workspace.objects.get(slug="demo")
    assert workspace.role_of(user) == Role.ADMIN
    demo = Datasource.objects.get(workspace=workspace)
    assert demo.config["port"] == settings.KILN_DEVMAILBOX_PORT
    assert demo.config["auth"] == "none"


def test_send_test_email_sends_through_a_datasource(db, smtp_server, settings):
    settings.KILN_DEVMAILBOX_PORT = smtp_server.port
    run("seed_demo")
    output = run("send_test_email", "demo", "Dev mailbox", "--to", "ann@example.com")
    assert output.strip() == '{"success": true, "message": "Email sent successfully"}'
    assert smtp_server.received[0].rcpt_tos == ["ann@example.com"]


def test_send_test_email_names_the_bad_field(db):
    run("seed_demo")
    with pytest.raises(CommandError, match=r"Not sent \(to\): To email\(s\) has an invalid"):
        run("send_test_email", "demo", "Dev mailbox", "--to", "bob@")
    with pytest.raises(CommandError, match="No datasource 'Nope'"):
        run("send_test_email", "demo", "Nope", "--to", "bob@example.com")


def test_createsuperuser_works(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "admin-pass-123")
    call_command(
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "a@kiln.test",
        stdout=io.StringIO(),
    )
    assert get_user_model().objects.get(username="admin").is_superuser
