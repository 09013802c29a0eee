"""The shared core: the error base, the text -> bool parser, safe file names."""

from __future__ import annotations

import pickle

import pytest

from bindings import BindingError
from core.errors import KilnError
from core.filenames import safe_filename
from core.text import as_bool, parse_bool


@pytest.mark.parametrize("word", ["true", "TRUE", " yes ", "on", "1", True, 1])
def test_truth_words_are_true(word):
    assert parse_bool(word) is True


@pytest.mark.parametrize("word", ["false", "No", "off", "0", "", "  ", "none", "null", None, 0])
def test_false_words_are_false(word):
    assert parse_bool(word) is False


def test_other_text_is_neither_and_the_caller_decides():
    assert parse_bool("maybe") is None
    assert as_bool("maybe") is True
    assert as_bool("maybe", unknown=False) is False


def test_every_error_names_a_field_and_a_message():
    error = KilnError("to", "“x” is not an email address.")
    assert str(error) == "“x” is not an email address."
    assert error.as_dict() == {"field": "to", "message": "“x” is not an email address."}
    assert KilnError(None, "broken").field == ""


def test_binding_errors_are_kiln_errors_and_survive_pickling():
    error = BindingError("subject", "form1.nope", "unknown name 'form1'")
    assert isinstance(error, KilnError)
    assert error.field == "subject"
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("a<b>c.txt", "a_b_c.txt"),
        ("...", "fallback"),
        (".hidden", "hidden"),
        ("x" * 300, "x" * 200),
    ],
)
def test_safe_filename(given, safe):
    assert safe_filename(given, "fallback") == safe
