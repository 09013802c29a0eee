"""The site's icon: linked from every page, and /favicon.ico (what a browser asks for
where no page links one) leads to it, so no page load logs a 404."""

from __future__ import annotations

from django.contrib.staticfiles import finders
from django.templatetags.static import static


def test_pages_link_the_icon_and_favicon_ico_leads_to_it(client, team):
    icon = static("img/favicon.svg")
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == icon
    assert finders.find("img/favicon.svg")
    client.force_login(team.owner)
    for path in ("/accounts/login/", "/"):
        page = client.get(path)
        assert page.status_code == 200
        assert f'<link rel="icon" href="{icon}" type="image/svg+xml">' in page.text
