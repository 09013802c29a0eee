"""Sign in, sign out, and the workspaces page."""

from __future__ import annotations

from django.urls import reverse


def test_sign_in_and_out(client, team):
    page = client.get(reverse("login"))
    assert "Sign in to Kiln" in page.text
    response = client.post(reverse("login"), {"username": "owner", "password": "owner-pass-1"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    home = client.get(reverse("home"))
    assert "Acme" in home.text and "Admin" in home.text
    assert "Other" not in home.text
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_a_wrong_password_is_refused(client, team):
    response = client.post(reverse("login"), {"username": "owner", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text


def test_viewers_see_no_datasource_link(client, team):
    client.force_login(team.viewer)
    assert "Datasources" not in client.get(reverse("home")).text
