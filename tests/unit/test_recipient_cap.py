"""Recipient lists are counted and capped before any address is parsed: the parser is
never reached for a field over the limit, however the addresses are given."""

from __future__ import annotations

import pytest

from datasources.errors import FieldError
from datasources.plugins.smtp import message

MANY = 100_000


@pytest.fixture
def parses(monkeypatch):
    calls = []
    real = message._parse_item

    def counting(name, item, text):
        calls.append(name)
        return real(name, item, text)

    monkeypatch.setattr(message, "_parse_item", counting)
    return calls


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("to", ",".join(f"u{i}@x.test" for i in range(MANY)), "100,000 recipients"),
        ("cc", [f"u{i}@x.test" for i in range(MANY)], "100,000 items"),
        ("bcc", ['"A, B" <a@x.test>, ' * 30_000], "30,001 recipients"),
        ("to", ["a@x.test"] + ["b@x.test, c@x.test"] * 400, "801 recipients"),
    ],
)
def test_a_field_over_the_limit_is_refused_before_parsing(parses, settings, field, value, says):
    settings.KILN_SMTP_MAX_RECIPIENTS = 500
    fields = {"from": "app@kiln.test", "to": "a@x.test", field: value}
    with pytest.raises(FieldError) as caught:
        message.build_email(fields)
    assert caught.value.field == field
    assert says in caught.value.message and "limit of 500" in caught.value.message
    assert parses == []


def test_the_limit_counts_to_cc_and_bcc_together(parses, settings):
    settings.KILN_SMTP_MAX_RECIPIENTS = 3
    fields = {"from": "app@kiln.test", "to": "a@x.test, b@x.test", "cc": ["c@x.test"]}
    with pytest.raises(FieldError) as caught:
        message.build_email({**fields, "bcc": "d@x.test"})
    assert caught.value.field == "bcc" and parses == []
    assert message.build_email(fields).recipients == ["a@x.test", "b@x.test", "c@x.test"]


def test_reply_to_is_capped_too(parses, settings):
    settings.KILN_SMTP_MAX_RECIPIENTS = 2
    fields = {"from": "app@kiln.test", "to": "a@x.test", "set_reply_to": True}
    with pytest.raises(FieldError) as caught:
        message.build_email({**fields, "reply_to": "a@x.test, b@x.test, c@x.test"})
    assert caught.value.field == "reply_to" and parses == []


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("a@x.test", 1),
        ("a@x.test, b@x.test", 2),
        ('"Doe, Ann" <a@x.test>, b@x.test', 2),
        ('"a\\", b" <a@x.test>', 1),
        ("a@x.test,", 1),
    ],
)
def test_count_addresses(text, count):
    assert message.count_addresses(text) == count
