"""What a bound value may do to the Send email fields it lands in: a value bound into
the Custom headers JSON stays inside its string (it cannot replace or add a header), a
text field keeps the binding output cap however plainly it reads its value, and an error
about a huge value quotes a line of it, not all of it."""

from __future__ import annotations

import pytest

from bindings import MAX_OUTPUT
from datasources.errors import QUOTED, FieldError
from datasources.plugins import get_plugin
from queries.errors import RunRequestError
from queries.execution import evaluate_action_fields
from queries.models import ApiToken
from tests.support.apps import make_app, post_run, welcome_inputs

smtp = get_plugin("smtp")

#: The documented template, and a form value that closes its string and adds keys.
TEMPLATE = (
    '{"List-Unsubscribe": "<https://x/u?id=<< form1.data.id >>>", '
    '"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}'
)
ATTACK = (
    '1>", "List-Unsubscribe": "<https://evil.example/>", '
    '"Disposition-Notification-To": "spy@evil.example'
)


def inputs_with(**data) -> dict:
    inputs = welcome_inputs()
    inputs["form1"]["data"].update(data)
    return inputs


@pytest.fixture
def api(team, smtp_server, client):
    app, query = make_app(team.workspace, smtp_server.port)
    token = ApiToken.issue(team.teammate, "tests")[1]

    def post(inputs: dict):
        return post_run(client, app, inputs, token, query.name)

    post.query = query
    return post


# ------------------------------------------------------------ custom headers as JSON


@pytest.mark.django_db(transaction=True)
def test_a_bound_value_cannot_change_the_set_of_custom_headers(api, smtp_server):
    api.query.fields = {**api.query.fields, "headers": TEMPLATE}
    api.query.save()
    response = api(inputs_with(id=ATTACK))
    assert response.status_code == 202, response.content
    message = smtp_server.received[0].message
    assert message.get_all("List-Unsubscribe") == [f"<https://x/u?id={ATTACK}>"]
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    assert message["Disposition-Notification-To"] is None


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ('{"X-A": "1", "X-A": "2"}', "'X-A' is given twice"),
        ('{"List-Unsubscribe": "<a>", "List-Unsubscribe": "<b>"}', "List-Unsubscribe"),
        ('[{"name": "X-A", "value": "1", "name": "Bcc"}]', "'name' is given twice"),
        ('[{"name": "X-A", "value": "1"}, {"name": "X-A", "value": "2"}]', "X-A is given"),
    ],
)
def test_a_header_name_given_twice_in_the_json_is_refused_naming_it(headers, named):
    with pytest.raises(FieldError) as caught:
        smtp.preview("send_email", {"from": "a@kiln.test", "to": "b@kiln.test", "headers": headers})
    assert caught.value.field == "headers"
    assert named in caught.value.message


def test_a_bound_quote_or_line_break_in_the_json_is_refused_or_kept_as_text():
    fields = {"from": "a@kiln.test", "to": "b@kiln.test", "headers": '{"X-Id": "<< v >>"}'}
    evaluated = evaluate_action_fields(smtp, "send_email", fields, {"v": 'a", "Bcc": "x'})
    preview = smtp.preview("send_email", evaluated)
    assert ("X-Id", 'a", "Bcc": "x') in preview["headers"]
    evaluated = evaluate_action_fields(smtp, "send_email", fields, {"v": "1\r\nBcc: x"})
    with pytest.raises(FieldError) as caught:
        smtp.preview("send_email", evaluated)
    assert caught.value.field == "headers"


# ------------------------------------------------------------ output caps per field


def test_a_text_field_keeps_the_output_cap_when_it_only_reads_its_value():
    big = "x" * (MAX_OUTPUT + 1)
    for name in ("subject", "body", "to", "headers"):
        with pytest.raises(RunRequestError) as caught:
            evaluate_action_fields(smtp, "send_email", {name: "<< q.data >>"}, {"q": {"data": big}})
        assert caught.value.field == name
        assert "output too long" in caught.value.message


def test_a_files_field_passes_10_mb_read_from_the_context():
    data = "data:application/octet-stream;base64," + "A" * (10 * 1024 * 1024)
    files = [{"name": "big.bin", "data": data}]
    context = {"files1": {"files": files}}
    fields = {"attachments": "<< files1.files >>", "inline_images": "<< files1.files >>"}
    evaluated = evaluate_action_fields(smtp, "send_email", fields, context)
    assert evaluated["attachments"] is evaluated["inline_images"] is files


# ------------------------------------------------------------ errors quote a line


HUGE = "x" * 5_000_000 + "\n"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", HUGE),
        ("subject", "x" * 1000 + "\n"),
        ("from_name", HUGE),
        ("to", HUGE),
        ("cc", "ann@example.com, " + "y" * 100_000 + "@"),
        ("headers", {"X-A": HUGE}),
        ("headers", {"X-A": "x" * 800 + "\n"}),
        ("headers", {"X" * 100_000 + ":": "1"}),
        ("body_type", HUGE),
        ("attachments", ["/etc/" + "x" * 100_000]),
        ("invite_start", "2027-" + "x" * 100_000),
        ("invite_timezone", "Europe/" + "x" * 100_000),
        ("invite_location", HUGE),
    ],
)
def test_an_error_quotes_at_most_a_line_of_the_value(field, value):
    fields = {"from": "a@kiln.test", "to": "b@kiln.test", field: value}
    if field.startswith("invite_") and field != "invite_start":
        fields["invite_start"] = "2027-01-15T09:00"
    with pytest.raises(FieldError) as caught:
        smtp.preview("send_email", fields)
    assert caught.value.field == field
    assert len(caught.value.message) < 300 + QUOTED, caught.value.message[:400]


def test_an_error_about_missing_cid_references_lists_a_few_each_cut():
    body = "".join(f'<img src="cid:{n}{"x" * 10_000}">' for n in range(1000))
    fields = {"from": "a@kiln.test", "to": "b@kiln.test", "body_type": "html", "body": body}
    with pytest.raises(FieldError) as caught:
        smtp.preview("send_email", fields)
    assert caught.value.field == "body"
    assert "and 995 more" in caught.value.message
    assert len(caught.value.message) < 800
