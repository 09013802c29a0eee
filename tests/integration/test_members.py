"""Workspaces, members and invitations, through the pages, with a real SMTP server."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from builder.models import App
from builder.publishing import publish
from workspaces.models import Invitation, Membership, Role, Workspace, hash_token

LINK = re.compile(r"http://testserver/invitations/([\w-]+)/")


@pytest.fixture
def mail(settings, smtp_server):
    """Kiln's own email goes to a real SMTP server."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    return smtp_server


def members_url(team) -> str:
    return reverse("workspaces:members", args=[team.workspace.slug])


def invite(client, team, who: str, role: str = "viewer"):
    url = reverse("workspaces:invite", args=[team.workspace.slug])
    return client.post(url, {"who": who, "role": role}, follow=True)


def invite_link(client, team, who: str, role: str = "viewer") -> str:
    client.force_login(team.owner)
    page = invite(client, team, who, role)
    (token,) = set(LINK.findall(page.text))
    client.logout()
    return reverse("workspaces:invitation", args=[token])


def membership(team, user) -> Membership:
    return Membership.objects.get(workspace=team.workspace, user=user)


# Creating and switching workspaces


def test_any_user_creates_a_workspace_and_becomes_its_admin(client, team):
    client.force_login(team.viewer)
    response = client.post(reverse("workspaces:create"), {"name": "Ops"}, follow=True)
    workspace = Workspace.objects.get(name="Ops")
    assert workspace.role_of(team.viewer) == Role.ADMIN
    assert "Workspace Ops created" in response.text
    assert "(current)" in response.text  # the new workspace is the current one
    assert client.get(reverse("workspaces:members", args=[workspace.slug])).status_code == 200


@pytest.mark.parametrize(
    ("name", "message"),
    [("  ", "Give the workspace a name."), ("x" * 101, "at most 100"), ("A\r\nB", "control")],
)
def test_a_bad_workspace_name_is_refused(client, team, name, message):
    client.force_login(team.owner)
    response = client.post(reverse("workspaces:create"), {"name": name})
    assert response.status_code == 400 and message in response.text
    assert Workspace.objects.count() == 2


def test_switching_workspace_is_remembered(client, team):
    team.other_workspace.add_member(team.owner, Role.VIEWER)
    client.force_login(team.owner)
    home = client.get(reverse("home")).text
    assert 'aria-label="Current workspace"' in home
    client.post(reverse("workspaces:switch"), {"workspace": team.other_workspace.slug})
    home = client.get(reverse("home")).text
    # The current one first
    assert home.index('id="workspace-other"') < home.index('id="workspace-acme"')
    assert f'value="{team.other_workspace.slug}" selected' in home


def test_switching_to_a_workspace_of_others_is_404(client, team):
    client.force_login(team.owner)
    response = client.post(reverse("workspaces:switch"), {"workspace": "other"})
    assert response.status_code == 404


# Invitations


def test_an_invitation_is_emailed_with_its_link(client, team, mail):
    client.force_login(team.owner)
    page = invite(client, team, "new.person@example.com", "editor")
    assert "Invitation sent to new.person@example.com" in page.text
    (shown,) = set(LINK.findall(page.text))
    (received,) = mail.wait_for(1)
    assert received.rcpt_tos == ["new.person@example.com"]
    message = received.message
    assert message["Subject"] == "owner invited you to Acme on Kiln"
    assert f"http://testserver/invitations/{shown}/" in message.get_content()
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hash_token(shown) and shown not in invitation.token_hash
    assert invitation.role == Role.EDITOR and invitation.invited_by == team.owner
    # The link is shown once only.
    assert not LINK.findall(client.get(members_url(team)).text)


def test_an_invitation_still_shows_its_link_when_the_email_fails(client, team, settings):
    from tests.support.smtp_server import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    client.force_login(team.owner)
    page = invite(client, team, "someone@example.com")
    assert page.status_code == 200
    assert "the email was not sent" in page.text and LINK.findall(page.text)


def test_accepting_as_a_signed_in_user(client, team, mail):
    link = invite_link(client, team, "outsider", "editor")
    client.force_login(team.outsider)
    page = client.get(link)
    assert "Join Acme" in page.text and "Accept the invitation" in page.text
    home = client.post(link, {"action": "accept"}, follow=True)
    assert "You joined Acme as editor." in home.text
    assert membership(team, team.outsider).role == Role.EDITOR


def test_accepting_by_signing_in_on_the_invitation_page(client, team, mail):
    link = invite_link(client, team, "outsider@kiln.test")
    page = client.post(
        link,
        {"action": "signin", "signin-username": "outsider", "signin-password": "outsider-pass-1"},
        follow=True,
    )
    assert "You joined Acme as viewer." in page.text
    assert membership(team, team.outsider).role == Role.VIEWER


def test_accepting_with_a_new_account(client, team, mail):
    link = invite_link(client, team, "nina@example.com")
    signup = {
        "action": "signup",
        "signup-username": "nina",
        "signup-email": "nina@example.com",
        "signup-password": "a-long-pass-phrase-9",
    }
    page = client.post(link, signup, follow=True)
    assert "You joined Acme as viewer." in page.text
    nina = get_user_model().objects.get(username="nina")
    assert membership(team, nina).role == Role.VIEWER
    assert page.context["user"] == nina


def test_a_bad_new_account_is_refused_and_the_invitation_stays_open(client, team, mail):
    link = invite_link(client, team, "nina@example.com")
    bad = {
        "action": "signup",
        "signup-username": "owner",
        "signup-email": "not an email",
        "signup-password": "123",
    }
    page = client.post(link, bad)
    assert page.status_code == 400
    assert "That username is taken" in page.text and "valid email" in page.text
    assert Invitation.objects.get().accepted_at is None
    wrong = {"action": "signin", "signin-username": "outsider", "signin-password": "nope"}
    assert "correct username and password" in client.post(link, wrong).text
    assert Invitation.objects.get().accepted_at is None


def test_an_invitation_by_username_is_that_users_only(client, team, mail):
    link = invite_link(client, team, "outsider")
    client.force_login(team.teammate)
    page = client.post(link, {"action": "accept"})
    assert page.status_code == 400 and "This invitation is for outsider" in page.text
    assert Invitation.objects.get().accepted_at is None


def test_inviting_a_member_says_so(client, team, mail):
    client.force_login(team.owner)
    assert "teammate is already a member of Acme" in invite(client, team, "teammate").text
    assert "already a member" in invite(client, team, "viewer@kiln.test").text
    assert "There is no user named" in invite(client, team, "nobody").text
    assert "not a valid email" in invite(client, team, "a@b@c").text
    assert "Choose a role" in invite(client, team, "x@example.com", "owner").text
    assert not Invitation.objects.exists() and not mail.received


def test_used_expired_and_unknown_links_get_a_clear_page(client, team, mail):
    link = invite_link(client, team, "outsider")
    client.force_login(team.outsider)
    client.post(link, {"action": "accept"})
    used = client.get(link)
    assert used.status_code == 410 and "This invitation has been used" in used.text
    assert client.post(link, {"action": "accept"}).status_code == 410

    expired_link = invite_link(client, team, "late@example.com")
    Invitation.objects.filter(accepted_at__isnull=True).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    expired = client.get(expired_link)
    assert expired.status_code == 410 and "This invitation has expired" in expired.text

    for token in ["nope", "x" * 500, "a.b~c%20d"]:
        unknown = client.get(f"/invitations/{token}/")
        assert unknown.status_code == 404 and "not valid" in unknown.text


def test_a_revoked_invitation_no_longer_works(client, team, mail):
    link = invite_link(client, team, "someone@example.com")
    client.force_login(team.owner)
    invitation = Invitation.objects.get()
    url = reverse("workspaces:invitation_revoke", args=[team.workspace.slug, invitation.pk])
    client.post(url)
    assert client.get(link).status_code == 404


# Roles and removal


def role_url(team, user) -> str:
    return reverse("workspaces:member_role", args=[team.workspace.slug, membership(team, user).pk])


def remove_url(team, user) -> str:
    return reverse(
        "workspaces:member_remove", args=[team.workspace.slug, membership(team, user).pk]
    )


def test_the_members_page_lists_members_with_their_roles(client, team):
    client.force_login(team.owner)
    page = client.get(members_url(team)).text
    for name in ["owner", "teammate", "viewer"]:
        assert f'id="member-{name}"' in page
    assert "outsider" not in page


def test_an_admin_changes_a_role(client, team):
    client.force_login(team.owner)
    page = client.post(role_url(team, team.viewer), {"role": "editor"}, follow=True)
    assert "viewer is now editor." in page.text
    assert membership(team, team.viewer).role == Role.EDITOR
    page = client.post(role_url(team, team.viewer), {"role": "boss"}, follow=True)
    assert "Choose a role" in page.text and membership(team, team.viewer).role == Role.EDITOR


def test_an_admin_removes_a_member(client, team):
    client.force_login(team.owner)
    page = client.post(remove_url(team, team.teammate), follow=True)
    assert "teammate was removed from Acme." in page.text
    assert team.workspace.role_of(team.teammate) is None
    client.force_login(team.teammate)
    assert client.get(reverse("editor:apps", args=[team.workspace.slug])).status_code == 404


def test_the_last_admin_can_be_neither_demoted_nor_removed(client, team):
    client.force_login(team.owner)
    page = client.post(role_url(team, team.owner), {"role": "editor"}, follow=True)
    assert "A workspace needs at least one admin" in page.text
    page = client.post(remove_url(team, team.owner), follow=True)
    assert "A workspace needs at least one admin" in page.text
    assert membership(team, team.owner).role == Role.ADMIN
    # With a second admin, the first may step down.
    client.post(role_url(team, team.teammate), {"role": "admin"})
    response = client.post(role_url(team, team.owner), {"role": "viewer"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert membership(team, team.owner).role == Role.VIEWER


def test_non_admins_are_refused(client, team):
    urls = [
        ("get", members_url(team), {}),
        ("post", reverse("workspaces:invite", args=[team.workspace.slug]), {"who": "x@y.z"}),
        ("post", role_url(team, team.viewer), {"role": "admin"}),
        ("post", remove_url(team, team.owner), {}),
    ]
    for user, status in [(team.teammate, 403), (team.viewer, 403), (team.outsider, 404)]:
        client.force_login(user)
        for method, url, data in urls:
            assert getattr(client, method)(url, data).status_code == status, (user, url)
    client.logout()
    assert client.get(members_url(team)).status_code == 302  # to the sign-in page
    assert membership(team, team.owner).role == Role.ADMIN
    assert not Invitation.objects.exists()


def test_a_member_of_another_workspace_is_404(client, team):
    other = Membership.objects.get(workspace=team.other_workspace)
    client.force_login(team.owner)
    url = reverse("workspaces:member_remove", args=[team.workspace.slug, other.pk])
    assert client.post(url).status_code == 404
    assert Membership.objects.filter(pk=other.pk).exists()


# The home page


@pytest.fixture
def apps(team):
    from builder.models import Page

    published = App.objects.create(workspace=team.workspace, name="Published one")
    Page.objects.create(app=published, name="Home", slug="home")
    publish(published, team.owner)
    draft = App.objects.create(workspace=team.workspace, name="Draft one")
    App.objects.create(workspace=team.other_workspace, name="Elsewhere")
    return published, draft


def test_editors_see_every_app_with_edit_and_open_links(client, team, apps):
    published, draft = apps
    client.force_login(team.teammate)
    page = client.get(reverse("home")).text
    assert "Published one" in page and "Draft one" in page and "Elsewhere" not in page
    assert reverse("editor:app", args=[draft.slug]) in page
    assert reverse("editor:app", args=[published.slug]) in page
    assert reverse("viewer:app", args=[published.slug]) in page
    assert reverse("viewer:app", args=[draft.slug]) not in page


def test_viewers_see_published_apps_only_and_no_edit_links(client, team, apps):
    published, draft = apps
    client.force_login(team.viewer)
    page = client.get(reverse("home")).text
    assert "Published one" in page and "Draft one" not in page
    assert reverse("viewer:app", args=[published.slug]) in page
    assert "/edit/" not in page and "Members" not in page
