"""The editor's apps list, app and page actions, and publishing, through the test client."""

from __future__ import annotations

import json

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.urls import NoReverseMatch, include, path, reverse

from builder.document import free_app_name
from builder.models import App, AppVersion, Page, Query, Widget
from builder.publishing import publish
from datasources.models import Datasource
from editor import urls_apps
from kiln import urls as root_urls
from tests.support.apps import make_app

pytestmark = [pytest.mark.django_db]


# The canvas (editor:canvas) is another part of the editor. Until it exists, these tests
# run with a stand-in for it, so that redirects to it can be reversed and checked.
def _canvas_stand_in(request, app: str, page: str) -> HttpResponse:
    return HttpResponse(f"canvas of {app}/{page}")


_STAND_IN = path("edit/<slug:app>/<slug:page>/", _canvas_stand_in, name="canvas")
# The first "editor" namespace in the list is the one reverse() uses.
urlpatterns = [
    path("", include(([*urls_apps.urlpatterns, _STAND_IN], "editor"))),
    *root_urls.urlpatterns,
]

try:
    reverse("editor:canvas", args=["app", "page"])
except NoReverseMatch:
    pytestmark.append(pytest.mark.urls(__name__))


# Helpers


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def canvas(app: App, page: Page | str) -> str:
    slug = page if isinstance(page, str) else page.slug
    return reverse("editor:canvas", args=[app.slug, slug])


def stored_counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (App, Page, Widget, Query, Datasource))


@pytest.fixture
def app(team) -> App:
    """An app with two pages, and nothing published."""
    app = App.objects.create(workspace=team.workspace, name="Orders")
    Page.objects.create(app=app, name="Home", position=0)
    Page.objects.create(app=app, name="Details", position=1)
    return app


@pytest.fixture
def contact(team) -> App:
    """An app with widgets, a query and a datasource with a password."""
    app, _ = make_app(team.workspace, 2525)
    Datasource.objects.filter(workspace=team.workspace).update(secret="pw-XYZ-secret")
    return app


@pytest.fixture
def editor(client, team):
    client.force_login(team.teammate)
    return client


def page_names(app: App) -> list[str]:
    return list(app.pages.values_list("name", flat=True))


# The apps list


def test_an_editor_sees_every_app_with_its_controls(editor, team, app, contact):
    publish(contact, team.owner)
    response = editor.get(f"/w/{team.workspace.slug}/apps/")
    assert response.status_code == 200
    text = response.text
    assert "Orders" in text and "Contact" in text
    assert "Not published" in text and "v1 · just now" in text
    assert "2 pages" in text
    assert reverse("editor:app", args=[app.slug]) in text
    assert reverse("viewer:app", args=[contact.slug]) in text
    for name in ("app_create", "app_import"):
        assert reverse(f"editor:{name}", args=[team.workspace.slug]) in text
    for name in ("app_rename", "app_duplicate", "app_export", "app_delete"):
        assert reverse(f"editor:{name}", args=[app.slug]) in text
    assert 'type="file"' in text


def test_a_viewer_sees_only_published_apps_and_no_controls(client, team, app, contact):
    publish(contact, team.owner)
    client.force_login(team.viewer)
    response = client.get(f"/w/{team.workspace.slug}/apps/")
    assert response.status_code == 200
    text = response.text
    assert "Contact" in text and "Orders" not in text
    assert reverse("viewer:app", args=[contact.slug]) in text
    assert "/edit/" not in text
    assert reverse("editor:app_create", args=[team.workspace.slug]) not in text
    assert 'type="file"' not in text


def test_the_empty_list_says_what_to_do(client, team):
    client.force_login(team.viewer)
    assert "No published apps yet" in client.get(f"/w/{team.workspace.slug}/apps/").text
    client.force_login(team.teammate)
    assert "No apps yet" in client.get(f"/w/{team.workspace.slug}/apps/").text


def test_signed_out_users_are_sent_to_sign_in(client, team, app):
    response = client.get(f"/w/{team.workspace.slug}/apps/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.post(f"/edit/{app.slug}/publish")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# Apps


def test_creating_an_app_gives_it_one_page_and_opens_it(editor, team):
    response = editor.post(f"/w/{team.workspace.slug}/apps/new", {"name": "  Sign-ups  "})
    app = App.objects.get()
    assert app.name == "Sign-ups" and app.slug == "sign-ups"
    assert app.workspace == team.workspace
    assert page_names(app) == ["Page 1"]
    assert response.status_code == 302 and response["Location"] == f"/edit/{app.slug}/"
    assert flash(response) == ["Created “Sign-ups”."]

    opened = editor.get(response["Location"])
    assert opened.status_code == 302 and opened["Location"] == canvas(app, "page-1")


def test_creating_an_app_needs_a_name(editor, team):
    response = editor.post(f"/w/{team.workspace.slug}/apps/new", {"name": "  "})
    assert response["Location"] == f"/w/{team.workspace.slug}/apps/"
    assert flash(response) == ["Give the app a name."]
    assert not App.objects.exists()


def test_opening_an_app_goes_to_its_first_page(editor, app):
    Page.objects.filter(app=app, name="Details").update(position=0)
    Page.objects.filter(app=app, name="Home").update(position=1)
    response = editor.get(f"/edit/{app.slug}/")
    assert response["Location"] == canvas(app, "details")


def test_opening_an_app_without_pages_creates_page_1(editor, team):
    app = App.objects.create(workspace=team.workspace, name="Bare")
    response = editor.get(f"/edit/{app.slug}/")
    assert page_names(app) == ["Page 1"]
    assert response["Location"] == canvas(app, "page-1")


def test_renaming_an_app_keeps_its_slug(editor, team, app):
    response = editor.post(
        f"/edit/{app.slug}/rename",
        {"name": "Open orders"},
        HTTP_REFERER=f"http://testserver/w/{team.workspace.slug}/apps/",
    )
    app.refresh_from_db()
    assert app.name == "Open orders" and app.slug == "orders"
    assert response["Location"] == f"/w/{team.workspace.slug}/apps/"
    assert flash(response) == ["Renamed “Orders” to “Open orders”."]


def test_renaming_refuses_an_overlong_name(editor, app):
    response = editor.post(f"/edit/{app.slug}/rename", {"name": "x" * 101})
    app.refresh_from_db()
    assert app.name == "Orders"
    assert flash(response) == ["The app name can be at most 100 characters."]


def test_duplicating_copies_pages_widgets_and_queries(editor, team, contact):
    datasources = Datasource.objects.count()
    response = editor.post(f"/edit/{contact.slug}/duplicate")
    copy = App.objects.get(name="Copy of Contact")
    assert copy.slug == "copy-of-contact" and copy.workspace == team.workspace
    assert response["Location"] == f"/w/{team.workspace.slug}/apps/"
    assert flash(response) == ["Duplicated “Contact” as “Copy of Contact”."]

    assert page_names(copy) == page_names(contact)
    widgets = sorted(Widget.objects.filter(page__app=copy).values_list("name", "type"))
    assert widgets == sorted(Widget.objects.filter(page__app=contact).values_list("name", "type"))
    assert Widget.objects.get(page__app=copy, name="email_input").parent.name == "form1"
    query = copy.queries.get()
    original = contact.queries.get()
    assert (query.name, query.fields) == (original.name, original.fields)
    # The same datasource, not a copy (and so no secret copied anywhere).
    assert query.datasource == original.datasource
    assert Datasource.objects.count() == datasources
    # The original is untouched.
    assert Widget.objects.filter(page__app=contact).count() == len(widgets)


def test_duplicating_twice_gives_fresh_slugs(editor, contact):
    editor.post(f"/edit/{contact.slug}/duplicate")
    editor.post(f"/edit/{contact.slug}/duplicate")
    copies = App.objects.filter(name__startswith="Copy of Contact").order_by("pk")
    assert [(a.name, a.slug) for a in copies] == [
        ("Copy of Contact", "copy-of-contact"),
        ("Copy of Contact (2)", "copy-of-contact-2"),
    ]


def test_deleting_an_app_asks_first(editor, team, contact):
    response = editor.get(f"/edit/{contact.slug}/delete")
    assert response.status_code == 200
    assert "Delete “Contact”?" in response.text
    assert App.objects.filter(pk=contact.pk).exists()

    response = editor.post(f"/edit/{contact.slug}/delete")
    assert not App.objects.filter(pk=contact.pk).exists()
    assert not Page.objects.filter(app_id=contact.pk).exists()
    assert not Query.objects.exists()
    assert Datasource.objects.filter(workspace=team.workspace).exists()  # others may use it
    assert response["Location"] == f"/w/{team.workspace.slug}/apps/"
    assert flash(response) == ["Deleted “Contact”."]


def test_export_is_a_json_download_without_secrets(editor, contact):
    response = editor.get(f"/edit/{contact.slug}/export")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="contact.json"'
    text = response.content.decode()
    assert "pw-XYZ-secret" not in text
    document = json.loads(text)
    assert document["kiln"] == "app" and document["app"]["name"] == "Contact"
    assert "password" not in document["datasources"][0]
    assert [w["name"] for w in document["pages"][0]["widgets"]][0] == "form1"


def upload(document, name: str = "app.json") -> SimpleUploadedFile:
    content = document if isinstance(document, bytes) else json.dumps(document).encode()
    return SimpleUploadedFile(name, content, "application/json")


def test_importing_a_good_file_creates_the_app(editor, team, contact):
    document = json.loads(editor.get(f"/edit/{contact.slug}/export").content)
    document["app"]["name"] = "Imported contact"
    response = editor.post(
        f"/w/{team.workspace.slug}/apps/import", {"file": upload(document, "contact.json")}
    )
    imported = App.objects.get(name="Imported contact")
    assert imported.slug != contact.slug and imported.workspace == team.workspace
    assert page_names(imported) == page_names(contact)
    assert imported.queries.get().datasource == contact.queries.get().datasource
    assert response["Location"] == f"/w/{team.workspace.slug}/apps/"
    assert flash(response) == ["Imported “Imported contact” from contact.json."]


def test_importing_a_file_named_like_an_existing_app_numbers_the_new_one(editor, team, contact):
    document = json.loads(editor.get(f"/edit/{contact.slug}/export").content)
    names = []
    for _ in range(3):
        response = editor.post(
            f"/w/{team.workspace.slug}/apps/import", {"file": upload(document, "contact.json")}
        )
        names.append(flash(response)[-1])  # unread messages pile up in the session
    assert names == [
        f"Imported “Contact ({n})” from contact.json (this workspace already has an app "
        "named “Contact”)."
        for n in (2, 3, 4)
    ]
    assert sorted(App.objects.filter(workspace=team.workspace).values_list("name", flat=True)) == [
        "Contact",
        "Contact (2)",
        "Contact (3)",
        "Contact (4)",
    ]
    assert App.objects.get(name="Contact").pk == contact.pk  # the original is untouched


def test_an_app_name_at_the_length_limit_still_gets_its_number(team):
    long_name = "N" * 100
    App.objects.create(workspace=team.workspace, name=long_name, slug="long")
    name = free_app_name(team.workspace, long_name)
    assert name == "N" * 96 + " (2)" and len(name) == 100
    assert free_app_name(team.workspace, "Other") == "Other"


def test_importing_a_file_with_a_new_datasource_creates_it(editor, team):
    document = {
        "kiln": "app",
        "version": 1,
        "app": {"name": "Mailer app"},
        "datasources": [
            {
                "name": "Relay",
                "kind": "smtp",
                "config": {"host": "127.0.0.1", "port": 2525, "security": "none", "auth": "none"},
            }
        ],
        "pages": [{"name": "Home", "widgets": [{"name": "title", "type": "text"}]}],
        "queries": [{"name": "notify", "datasource": "Relay", "action": "send_email"}],
    }
    editor.post(f"/w/{team.workspace.slug}/apps/import", {"file": upload(document)})
    app = App.objects.get(name="Mailer app")
    assert app.queries.get().datasource.name == "Relay"
    assert Datasource.objects.get(name="Relay").workspace == team.workspace


def test_importing_invalid_json_stores_nothing(editor, team):
    before = stored_counts()
    response = editor.post(
        f"/w/{team.workspace.slug}/apps/import", {"file": upload(b'{"kiln": "app",', "bad.json")}
    )
    assert stored_counts() == before
    assert response["Location"] == f"/w/{team.workspace.slug}/apps/"
    (message,) = flash(response)
    assert message.startswith("bad.json is not valid JSON:") and "line 1" in message


def test_importing_a_bad_app_file_names_the_path_and_stores_nothing(editor, team, contact):
    document = json.loads(editor.get(f"/edit/{contact.slug}/export").content)
    document["pages"][0]["widgets"][1]["name"] = "not a name"
    before = stored_counts()
    response = editor.post(f"/w/{team.workspace.slug}/apps/import", {"file": upload(document)})
    assert stored_counts() == before
    (message,) = flash(response)
    assert message.startswith("Could not import app.json: pages[0].widgets[1].name:")
    assert message.endswith("Nothing was imported.")


def test_an_upload_never_reads_the_servers_environment(editor, team, monkeypatch):
    monkeypatch.setenv("KILN_TEST_SECRET", "server-secret")
    document = {
        "kiln": "app",
        "version": 1,
        "app": {"name": "Leaky"},
        "datasources": [
            {
                "name": "Evil",
                "kind": "smtp",
                "password": {"env": "KILN_TEST_SECRET"},
                "config": {
                    "host": "127.0.0.1",
                    "port": 2525,
                    "security": "none",
                    "auth": "password",
                    "username": "u",
                },
            }
        ],
    }
    before = stored_counts()
    response = editor.post(f"/w/{team.workspace.slug}/apps/import", {"file": upload(document)})
    assert stored_counts() == before
    (message,) = flash(response)
    assert "datasources[0].password" in message and "create that datasource" in message


def test_importing_without_a_file_says_so(editor, team):
    response = editor.post(f"/w/{team.workspace.slug}/apps/import")
    assert flash(response) == ["Choose an app file (.json) to import."]


# Pages


def test_adding_a_page_opens_it_with_a_slug_unique_in_the_app(editor, app):
    response = editor.post(f"/edit/{app.slug}/pages/add", {"name": "Home"})
    page = app.pages.last()
    assert (page.name, page.slug, page.position) == ("Home", "home-2", 2)
    assert response["Location"] == canvas(app, "home-2")
    assert flash(response) == ["Added page “Home”."]


def test_a_page_added_without_a_name_is_numbered(editor, app):
    editor.post(f"/edit/{app.slug}/pages/add", {"name": ""})
    assert page_names(app) == ["Home", "Details", "Page 3"]


def test_adding_a_page_with_htmx_redirects_the_browser(editor, app):
    response = editor.post(f"/edit/{app.slug}/pages/add", {"name": "Help"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"] == canvas(app, "help")


def test_renaming_a_page_keeps_its_slug(editor, app):
    here = f"http://testserver{canvas(app, 'details')}"
    response = editor.post(
        f"/edit/{app.slug}/pages/home/rename", {"name": "Start"}, HTTP_REFERER=here
    )
    page = app.pages.get(slug="home")
    assert page.name == "Start"
    assert response["Location"] == canvas(app, "details")
    assert flash(response) == ["Renamed page “Home” to “Start”."]


def test_a_foreign_referer_is_not_followed(editor, app):
    for referer in ("https://evil.test/edit/orders/", "http://testserver/w/acme/apps/"):
        response = editor.post(
            f"/edit/{app.slug}/pages/home/rename", {"name": "Start"}, HTTP_REFERER=referer
        )
        assert response["Location"] == canvas(app, "home")


def test_renaming_a_page_with_htmx_returns_the_panel(editor, app):
    response = editor.post(
        f"/edit/{app.slug}/pages/home/rename",
        {"name": "Start", "current": "details"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    text = response.text
    assert 'class="pages-panel"' in text and ">Start</a>" in text
    assert 'class="pages-item active"' in text and 'aria-current="page"' in text
    assert "Renamed page “Home” to “Start”." in text  # the message shows in the panel


def test_reordering_pages_with_an_order(editor, app):
    Page.objects.create(app=app, name="Help", position=2)
    editor.post(f"/edit/{app.slug}/pages/reorder", {"order": ["help", "home", "details"]})
    assert page_names(app) == ["Help", "Home", "Details"]
    assert list(app.pages.values_list("position", flat=True)) == [0, 1, 2]


def test_reordering_refuses_an_order_that_is_not_every_page(editor, app):
    response = editor.post(f"/edit/{app.slug}/pages/reorder", {"order": ["details"]})
    assert page_names(app) == ["Home", "Details"]
    assert flash(response) == ["The pages changed meanwhile: reload and try again."]


def test_moving_a_page_up_and_down_without_javascript(editor, app):
    Page.objects.create(app=app, name="Help", position=2)
    response = editor.post(f"/edit/{app.slug}/pages/reorder", {"page": "help", "move": "up"})
    assert page_names(app) == ["Home", "Help", "Details"]
    assert response["Location"] == canvas(app, "help")
    editor.post(f"/edit/{app.slug}/pages/reorder", {"page": "home", "move": "down"})
    assert page_names(app) == ["Help", "Home", "Details"]
    # At an end, nothing moves.
    editor.post(f"/edit/{app.slug}/pages/reorder", {"page": "help", "move": "up"})
    assert page_names(app) == ["Help", "Home", "Details"]
    assert (
        editor.post(f"/edit/{app.slug}/pages/reorder", {"page": "nope", "move": "up"}).status_code
        == 404
    )


def test_deleting_a_page(editor, app):
    here = f"http://testserver{canvas(app, 'home')}"
    response = editor.post(f"/edit/{app.slug}/pages/details/delete", HTTP_REFERER=here)
    assert page_names(app) == ["Home"]
    assert response["Location"] == canvas(app, "home")
    assert flash(response) == ["Deleted page “Details”."]


def test_deleting_the_open_page_goes_to_the_first_page(editor, app):
    here = f"http://testserver{canvas(app, 'home')}"
    response = editor.post(f"/edit/{app.slug}/pages/home/delete", HTTP_REFERER=here)
    assert response["Location"] == canvas(app, "details")
    assert app.pages.get().position == 0

    Page.objects.create(app=app, name="Home", position=1)
    response = editor.post(
        f"/edit/{app.slug}/pages/details/delete", {"current": "details"}, HTTP_HX_REQUEST="true"
    )
    assert response["HX-Redirect"] == canvas(app, "home")


def test_the_last_page_cannot_be_deleted(editor, app):
    app.pages.filter(slug="details").delete()
    response = editor.post(f"/edit/{app.slug}/pages/home/delete")
    assert page_names(app) == ["Home"]
    assert flash(response) == [
        "“Home” is the app's only page and cannot be deleted: add another page first."
    ]


# Publishing


def test_publishing_creates_a_version_that_viewers_get(client, team, app):
    client.force_login(team.viewer)
    assert client.get(f"/apps/{app.slug}/").status_code == 404

    client.force_login(team.teammate)
    response = client.post(f"/edit/{app.slug}/publish")
    version = AppVersion.objects.get(app=app)
    assert version.number == 1 and version.published_by == team.teammate
    assert response["Location"] == f"/edit/{app.slug}/"
    assert flash(response) == ["Published version 1: viewers now get it."]

    client.force_login(team.viewer)
    response = client.get(f"/apps/{app.slug}/")
    assert response.status_code == 200
    assert "<title>Home · Orders" in response.text


def test_viewers_keep_the_published_version_until_the_next_publish(client, team, app):
    publish(app, team.owner)
    client.force_login(team.teammate)
    client.post(f"/edit/{app.slug}/pages/home/rename", {"name": "Start"})

    client.force_login(team.viewer)
    assert "<title>Home · Orders" in client.get(f"/apps/{app.slug}/").text

    client.force_login(team.teammate)
    response = client.post(f"/edit/{app.slug}/publish")
    assert flash(response) == ["Published version 2: viewers now get it."]
    client.force_login(team.viewer)
    assert "<title>Start · Orders" in client.get(f"/apps/{app.slug}/").text


def test_publishing_returns_to_the_page_it_came_from(editor, app):
    here = canvas(app, "details")
    response = editor.post(f"/edit/{app.slug}/publish", HTTP_REFERER=f"http://testserver{here}")
    assert response["Location"] == here
    # Not another app's page, nor another site.
    other = App.objects.create(workspace=app.workspace, name="Orders archive")
    for referer in (f"http://testserver/edit/{other.slug}/", f"https://evil.test/edit/{app.slug}/"):
        response = editor.post(f"/edit/{app.slug}/publish", HTTP_REFERER=referer)
        assert response["Location"] == f"/edit/{app.slug}/"


# Access


def mutations(app: App, workspace: str) -> list[str]:
    return [
        f"/w/{workspace}/apps/new",
        f"/w/{workspace}/apps/import",
        f"/edit/{app.slug}/publish",
        f"/edit/{app.slug}/rename",
        f"/edit/{app.slug}/duplicate",
        f"/edit/{app.slug}/delete",
        f"/edit/{app.slug}/pages/add",
        f"/edit/{app.slug}/pages/reorder",
        f"/edit/{app.slug}/pages/home/rename",
        f"/edit/{app.slug}/pages/home/delete",
    ]


def test_viewers_get_403_on_every_editor_action(client, team, app):
    client.force_login(team.viewer)
    before = stored_counts()
    for url in mutations(app, team.workspace.slug):
        data = {"name": "Hacked", "page": "home", "move": "down"}
        assert client.post(url, data).status_code == 403, url
    for url in (f"/edit/{app.slug}/delete", f"/edit/{app.slug}/export"):
        assert client.get(url).status_code == 403, url
    assert stored_counts() == before
    assert not AppVersion.objects.exists()
    app.refresh_from_db()
    assert app.name == "Orders" and page_names(app) == ["Home", "Details"]


def test_a_viewer_opening_the_editor_gets_the_published_app(client, team, app):
    client.force_login(team.viewer)
    response = client.get(f"/edit/{app.slug}/")
    assert response.status_code == 302 and response["Location"] == f"/apps/{app.slug}/"


def test_outsiders_get_404_everywhere(client, team, app):
    client.force_login(team.outsider)
    assert client.get(f"/w/{team.workspace.slug}/apps/").status_code == 404
    for url in (f"/edit/{app.slug}/", f"/edit/{app.slug}/delete", f"/edit/{app.slug}/export"):
        assert client.get(url).status_code == 404, url
    for url in mutations(app, team.workspace.slug):
        assert client.post(url, {"name": "Hacked"}).status_code == 404, url
    assert App.objects.count() == 1 and not AppVersion.objects.exists()


def test_the_outsider_does_not_see_the_app_in_their_own_list(client, team, app):
    client.force_login(team.outsider)
    response = client.get(f"/w/{team.other_workspace.slug}/apps/")
    assert response.status_code == 200 and "Orders" not in response.text


def test_actions_refuse_the_wrong_method(editor, team, app):
    assert editor.get(f"/edit/{app.slug}/publish").status_code == 405
    assert editor.get(f"/edit/{app.slug}/pages/add").status_code == 405
    assert editor.post(f"/edit/{app.slug}/export").status_code == 405
    assert editor.post(f"/w/{team.workspace.slug}/apps/").status_code == 405
