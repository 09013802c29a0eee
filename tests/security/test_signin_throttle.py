"""Sign-in throttling (django-axes): failures per username and per address lock sign-in
for the cool-off, on Kiln's sign-in page and the admin's; the right password works again
after it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def sign_in(client: Client, username: str, password: str, url: str = LOGIN):
    return client.post(url, {"username": username, "password": password})


def test_a_30_attempt_guess_is_throttled_then_the_password_works_after_the_cool_off(
    client, team, settings
):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    statuses = [sign_in(client, "viewer", f"guess-{i}").status_code for i in range(30)]
    # The first 4 failures show the form again; the 5th locks (KILN_SIGNIN_FAILURE_LIMIT).
    assert statuses[:4] == [200] * 4
    assert set(statuses[4:]) == {429}
    locked = sign_in(client, "viewer", "viewer-pass-1")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.text
    assert "try again in 1 minute" in locked.text
    time.sleep(2.2)
    response = sign_in(client, "viewer", "viewer-pass-1")
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_message_names_the_minutes_of_the_cool_off(client, team, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    for i in range(5):
        sign_in(client, "viewer", f"guess-{i}")
    locked = sign_in(client, "viewer", "viewer-pass-1")
    assert locked.status_code == 429 and "try again in 15 minutes" in locked.text


def test_one_address_trying_many_usernames_is_throttled(client, team):
    for name in ("a1", "a2", "a3", "a4", "a5"):
        sign_in(client, name, "nope")
    assert sign_in(client, "owner", "owner-pass-1").status_code == 429


def test_one_username_from_many_addresses_is_throttled(team):
    for i in range(5):
        Client(REMOTE_ADDR=f"10.0.0.{i + 1}").post(
            LOGIN, {"username": "viewer", "password": "nope"}
        )
    fresh = Client(REMOTE_ADDR="10.0.0.99")
    assert sign_in(fresh, "viewer", "viewer-pass-1").status_code == 429
    # Another user from that address is not locked out.
    assert sign_in(fresh, "owner", "owner-pass-1").status_code == 302


def test_the_admins_sign_in_is_throttled_too(client, team, settings):
    team.owner.is_staff = team.owner.is_superuser = True
    team.owner.save()
    for i in range(5):
        sign_in(client, "owner", f"guess-{i}", "/admin/login/")
    assert sign_in(client, "owner", "owner-pass-1", "/admin/login/").status_code == 429


def test_a_success_before_the_limit_starts_the_count_again(client, team):
    for i in range(4):
        sign_in(client, "viewer", f"guess-{i}")
    assert sign_in(client, "viewer", "viewer-pass-1").status_code == 302
    client.logout()
    for i in range(4):
        assert sign_in(client, "viewer", f"again-{i}").status_code == 200
