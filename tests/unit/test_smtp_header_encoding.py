"""Every header Kiln writes with free text parses back equal with Python's email parser:
the subject, display names, attachment names, whatever scripts they mix."""

from __future__ import annotations

import random
from email import policy
from email.parser import BytesParser

import pytest

from datasources.errors import FieldError
from datasources.plugins.smtp.headers import LINE, TextHeader
from datasources.plugins.smtp.message import build_email, display_name, safe_filename

#: Pieces of text a random value is made of: ASCII words, emoji, accents, CJK, RTL,
#: guillemets, quotes and text that only looks like an encoded word.
PIECES = (
    "Hello",
    "order",
    "#12345",
    "naïve",
    "Grüße",
    "café",
    "«Bonjour»",
    "‹x›",
    "日本語のテキスト",
    "中文",
    "한국어",
    "Привет",
    "мир",
    "שלום",
    "مرحبا",
    "😀",
    "🎉🎉",
    "👩‍👩‍👧",
    '"quoted"',
    "'single'",
    "=?utf-8?q?x?=",
    "=?",
    "?=",
    "=?UTF-8?B?SGk=?=",
    "a" * 40,
    "\\",
    "(paren)",
    "<angle>",
    ",",
    ";",
)
SPACES = ("", " ", " ", "  ", "\t")


def random_text(rng: random.Random, length: int, pieces=PIECES) -> str:
    text = ""
    while len(text) < length:
        text += rng.choice(pieces) + rng.choice(SPACES)
    return text[:length]


def parsed(fields: dict):
    values = {"from": "app@kiln.test", "to": "ann@example.com", "subject": "Hi"}
    values.update(fields)
    email = build_email(values)
    return BytesParser(policy=policy.default).parsebytes(email.as_bytes()), email


def test_a_long_mixed_script_subject_parses_back_equal():
    subject = ("Grüße «Kiln» 😀 日本語 Привет мир naïve שלום 🎉 " * 6)[:200]
    assert len(subject) == 200
    message, _ = parsed({"subject": subject})
    assert str(message["Subject"]) == subject


def test_random_display_names_in_to_parse_back_equal():
    # A To field typed with an encoded word in a name is refused as it is read (its
    # parser sees a defect), so these names have none.
    pieces = [piece for piece in PIECES if "=?" not in piece and "?=" not in piece]
    rng = random.Random(7)
    for _ in range(100):
        names = [
            display_name(random_text(rng, rng.randint(1, 40), pieces)) or "x" for _ in range(3)
        ]
        to = [{"name": name, "spec": f"p{i}@example.com"} for i, name in enumerate(names)]
        message, email = parsed(
            {"to": [f"{email_header(item['name'])} <{item['spec']}>" for item in to]}
        )
        got = [a.display_name for a in message["To"].addresses]
        assert got == [a.display_name for a in email.message["To"].addresses]


def email_header(name: str) -> str:
    """``name`` as typed in a To field: quoted, with its quotes escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_random_attachment_names_parse_back_equal():
    rng = random.Random(5)
    for _ in range(100):
        name = random_text(rng, rng.randint(1, 80)) + ".pdf"
        item = {"name": name, "data": "data:text/plain;base64,aGk="}
        message, _ = parsed({"attachments": [item]})
        (part,) = message.iter_attachments()
        assert part.get_filename() == safe_filename(name, 1)


@pytest.mark.parametrize(
    "subject",
    ["", "Plain ASCII subject", "two  spaces", " leading", "trailing ", "=?utf-8?q?x?=", "x" * 120],
)
def test_edge_subjects_parse_back_equal(subject):
    message, _ = parsed({"subject": subject})
    assert str(message["Subject"]) == subject


def test_folded_lines_stay_within_78_characters():
    folded = TextHeader("Subject", "Grüße 😀 日本語 " * 30).fold(policy=policy.SMTP)
    assert all(len(line) <= LINE for line in folded.split("\r\n"))
    plain = TextHeader("Subject", "word " * 60 + "x").fold(policy=policy.SMTP)
    assert all(len(line) <= LINE for line in plain.split("\r\n"))


def test_a_plain_ascii_subject_stays_readable():
    _, email = parsed({"subject": "Your order #12345 has shipped"})
    assert b"Subject: Your order #12345 has shipped\r\n" in email.as_bytes()


def test_a_display_name_too_long_for_one_line_is_refused_naming_the_field():
    with pytest.raises(FieldError) as caught:
        parsed({"to": f"{'日本' * 200} <ann@example.com>"})
    assert caught.value.field == "to"
    assert "over the limit of 600" in caught.value.message
