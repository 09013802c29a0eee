"""The README's first command on other addresses: the demo datasource follows
KILN_DEVMAILBOX_PORT, the port guard lets it through, and a restart keeps a builder's edits."""

from __future__ import annotations

import http.cookiejar
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from datasources.errors import FieldError
from datasources.models import Datasource
from datasources.plugins import get_plugin
from datasources.plugins.smtp.config import SmtpConfigForm
from datasources.plugins.smtp.guard import resolve
from tests.support.smtp_server import free_port
from workspaces.models import Workspace

REPO = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def demo_datasource() -> Datasource:
    return Datasource.objects.get(workspace=Workspace.objects.get(slug="demo"))


@pytest.fixture
def standard_ports(settings):
    # The suite allows any port (tests/conftest.py); these tests check the real list.
    settings.KILN_SMTP_PORTS = ["25", "465", "587", "1025", "2525"]
    settings.KILN_DEVMAILBOX = True


def test_seed_demo_keeps_a_builders_edits_to_the_demo_datasource(db, settings):
    settings.KILN_DEVMAILBOX_PORT = 2600
    seed()
    datasource = demo_datasource()
    assert datasource.config["port"] == 2600  # a fresh one follows the setting
    datasource.config = {**datasource.config, "port": 2525, "timeout": 3}
    datasource.save()
    output = seed()
    datasource.refresh_from_db()
    assert datasource.config["port"] == 2525 and datasource.config["timeout"] == 3
    assert "'Dev mailbox' kept -> smtp://127.0.0.1:2525" in output
    assert Datasource.objects.filter(workspace=datasource.workspace).count() == 1


def test_the_dev_mailbox_port_validates_and_sends(db, settings, standard_ports, smtp_server):
    settings.KILN_DEVMAILBOX_PORT = smtp_server.port
    seed()
    form = SmtpConfigForm(
        {
            "host": "127.0.0.1",
            "port": str(smtp_server.port),
            "security": "none",
            "auth": "none",
            "timeout": "5",
        }
    )
    assert form.is_valid(), form.errors
    check = get_plugin("smtp").test_connection(demo_datasource().settings())
    assert check.ok, check.message
    out = io.StringIO()
    call_command("send_test_email", "demo", "Dev mailbox", "--to", "ann@example.com", stdout=out)
    assert '"success": true' in out.getvalue()
    assert smtp_server.wait_for(1)[0].rcpt_tos == ["ann@example.com"]


@pytest.mark.parametrize("host", ["192.0.2.10", "10.1.2.3", "mail.example.com"])
def test_the_dev_mailbox_port_is_refused_off_loopback(db, settings, standard_ports, host):
    settings.KILN_DEVMAILBOX_PORT = 2600
    form = SmtpConfigForm(
        {"host": host, "port": "2600", "security": "none", "auth": "none", "timeout": "5"}
    )
    assert not form.is_valid()
    assert "Port 2600 is not an SMTP port this server allows" in form.errors["port"][0]


def test_the_dev_mailbox_port_is_refused_when_the_dev_mailbox_is_off(db, settings, standard_ports):
    settings.KILN_DEVMAILBOX_PORT = 2600
    settings.KILN_DEVMAILBOX = False
    with pytest.raises(FieldError, match="Port 2600 is not an SMTP port"):
        resolve("127.0.0.1", 2600)
    assert resolve("127.0.0.1", 587)  # the listed ports are unchanged


def test_localhost_on_the_dev_mailbox_port_resolves_to_loopback_only(db, settings, standard_ports):
    settings.KILN_DEVMAILBOX_PORT = 2600
    assert all(address in ("127.0.0.1", "::1") for _f, address in resolve("localhost", 2600))


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "scripts/run.sh exited early"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def test_run_sh_on_other_addresses_gives_a_demo_that_connects(tmp_path):
    # run.sh works on the .venv next to it: give it a tree whose .venv is the one running
    # these tests (so it installs nothing) and a var dir in tmp_path (so var/ is untouched).
    tree = tmp_path / "tree"
    tree.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in (".venv", "var", ".git"):
            (tree / entry.name).symlink_to(entry)
    (tree / ".venv").symlink_to(Path(sys.prefix))
    web, mailbox = free_port(), free_port()
    env = {
        **os.environ,
        "KILN_ADDR": f"127.0.0.1:{web}",
        "KILN_DEVMAILBOX_PORT": str(mailbox),
        "KILN_VAR_DIR": str(tmp_path / "var"),
        "SECURE_COOKIES": "false",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "KILN_SMTP_PORTS", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    process = subprocess.Popen(
        ["bash", str(tree / "scripts" / "run.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{web}"
    try:
        _wait_for(f"{base}/healthz", process)
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

        def get(path: str) -> str:
            with opener.open(f"{base}{path}", timeout=10) as page:
                return page.read().decode()

        def post(path: str, data: dict, form_page: str) -> str:
            token = CSRF.search(get(form_page))
            assert token, f"no CSRF token on {form_page}"
            body = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), **data})
            request = urllib.request.Request(
                f"{base}{path}", data=body.encode(), headers={"Referer": f"{base}{form_page}"}
            )
            with opener.open(request, timeout=30) as response:
                return response.read().decode()

        login = "/accounts/login/"
        post(login, {"username": "demo", "password": "kiln-demo"}, login)
        edit = reverse("datasources:edit", args=["demo", 1])
        assert f'value="{mailbox}"' in get(edit)  # the fresh datasource is on the new port
        fields = {
            "name": "Dev mailbox",
            "kind": "smtp",
            "host": "127.0.0.1",
            "port": str(mailbox),
            "security": "none",
            "auth": "none",
            "timeout": "10",
            "verify_certificate": "on",
        }
        test_url = reverse("datasources:test_saved", args=["demo", 1])
        result = ""
        for _attempt in range(20):
            result = post(test_url, fields, edit)
            if 'data-ok="true"' in result:
                break
            time.sleep(0.5)  # the dev mailbox may still be starting
        assert f"Connected to 127.0.0.1:{mailbox} successfully." in result, result
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
    assert b"Traceback" not in output, output.decode(errors="replace")[-3000:]
