"""A binding's result is data: a method, a function, a class, a module or a generator, as
the result or inside a list or dict it returns, is an error naming the field, never the
value's Python text."""

from __future__ import annotations

import re

import pytest

from bindings import BindingError, evaluate
from workspaces.files import FileContent

CONTEXT = {
    "name": "Ann",
    "rows": [{"id": 1}],
    "files1": {"files": [FileContent("a.txt", "text/plain", b"hi")]},
}
PYTHON_TEXT = re.compile(
    r"<bound method|<built-in|<function|<class|<module|<generator|0x[0-9a-f]{4,}"
)


@pytest.mark.parametrize(
    "template",
    [
        "<< name.upper >>",
        "<< rows.append >>",
        "<< lipsum >>",
        "<< range >>",
        "<< cycler >>",
        "<< namespace >>",
        "<< [1, name.upper] >>",
        "<< {'a': name.lower} >>",
        "<< {'a': [1, {'b': rows.pop}]} >>",
        "Hello << name.upper >>",
        "<< rows[0].items >>",
        "<< name.upper.__call__ >>",
    ],
)
def test_a_value_that_is_not_data_is_an_error_naming_the_field(template):
    with pytest.raises(BindingError) as caught:
        evaluate("Subject", template, CONTEXT)
    text = str(caught.value)
    assert text.startswith("Subject:"), text
    assert PYTHON_TEXT.search(text) is None, text


@pytest.mark.parametrize("html", [False, True])
def test_data_still_evaluates(html):
    assert evaluate("f", "<< name.upper() >>", CONTEXT, html=html) == "ANN"
    assert evaluate("f", "<< rows >>", CONTEXT) == [{"id": 1}]
    assert evaluate("f", "<< files1.files >>", CONTEXT)[0].name == "a.txt"
    assert evaluate("f", "<< {'a': [1, 2.5, none, true]} >>", CONTEXT) == {
        "a": [1, 2.5, None, True]
    }
    assert evaluate("f", "<< range(3) >>", CONTEXT) == [0, 1, 2]
