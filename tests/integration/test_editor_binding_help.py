"""Help while typing a binding: the evaluated value under a field, "did you mean" for a
key a widget or query does not have, and the names offered in the query editor."""

from __future__ import annotations

import html
import json

import pytest
from django.urls import reverse

from builder.models import Widget
from tests.support.apps import make_app

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def contact(team):
    app, query = make_app(team.workspace, 2525)
    return app, query


def evaluate(client, app, text, **extra):
    data = {"binding_text": text, "binding_field": "subject", **extra}
    return client.post(reverse("editor:evaluate", args=[app.slug]), data, headers=HTMX)


def test_the_value_of_a_binding_with_the_default_test_values(client, team, contact):
    app, _ = contact
    Widget.objects.filter(name="email_input").update(properties={"default_value": "a@b.c"})
    client.force_login(team.teammate)
    response = evaluate(client, app, "To << email_input.value >>")
    assert response.status_code == 200
    assert "Evaluated value · text" in response.text and "To a@b.c" in response.text
    response = evaluate(client, app, "<< form1.data >>")
    assert "object" in response.text and html.escape('"email_input": "a@b.c"', quote=True) in (
        response.text
    )


def test_the_value_with_the_posted_test_values_and_errors_named(client, team, contact):
    app, _ = contact
    client.force_login(team.teammate)
    values = json.dumps({"cc_input": {"value": "x@y.z"}})
    response = evaluate(client, app, "<< cc_input.value|upper >>", binding_test_values=values)
    assert "X@Y.Z" in response.text
    response = evaluate(client, app, "<< 1 / 0 >>")
    assert "ev-value is-error" in response.text and "subject" in response.text
    response = evaluate(client, app, "<< cc_input.value >>", binding_test_values="{oops")
    assert "Test values: invalid JSON" in response.text
    # Plain text and a binding still being typed show nothing.
    assert evaluate(client, app, "Hello").text.strip() == ""
    assert evaluate(client, app, "Hello << cc_in").text.strip() == ""


def test_only_editors_may_evaluate(client, team, contact):
    app, _ = contact
    client.force_login(team.viewer)
    assert evaluate(client, app, "<< 1 >>").status_code == 403
    client.force_login(team.outsider)
    assert evaluate(client, app, "<< 1 >>").status_code == 404
    client.logout()
    assert evaluate(client, app, "<< 1 >>").status_code == 302


def test_the_query_editor_warns_did_you_mean_and_offers_names(client, team, contact):
    app, query = contact
    query.fields = {**query.fields, "subject": "Hi << email_input.valu >> << send_welcome.dat >>"}
    query.save()
    client.force_login(team.teammate)
    page = client.get(reverse("editor:query", args=[app.slug, query.name])).text
    assert (
        "`valu` is not a property of email_input (an Input): did you mean `value`?"
        in html.unescape(page)
    )
    assert "`dat` is not a property of send_welcome (a query): did you mean `data`?" in (
        html.unescape(page)
    )
    names = page.split('id="qe-names"')[1].split("</script>")[0]
    assert '"email_input.value"' in names and '"send_welcome.data"' in names
    assert '"form1.data.email_input"' in names
    assert 'data-evaluate-url="' in page and 'data-value-box="value-subject"' in page


def test_the_property_pane_warns_did_you_mean(client, team, contact):
    app, _ = contact
    page = app.pages.get()
    client.force_login(team.teammate)
    response = client.post(
        reverse("editor:canvas_property", args=[app.slug, page.slug, "cc_input"]),
        {"prop": "label", "value": "<< email_input.vale >>"},
    )
    assert "did you mean `value`?" in html.unescape(response.text)
    pane = client.get(reverse("editor:canvas_widget", args=[app.slug, page.slug, "cc_input"]))
    assert "did you mean `value`?" in html.unescape(pane.text)
    assert 'data-value-box="pf-label-value"' in pane.text


def test_a_file_input_per_file_picker_beside_the_test_values(client, team, contact):
    app, query = contact
    client.force_login(team.teammate)
    page = client.get(reverse("editor:query", args=[app.slug, query.name])).text
    assert 'data-test-files="files1"' in page and 'type="file"' in page
    assert page.count("data-test-files=") == 1  # one file picker in the app
