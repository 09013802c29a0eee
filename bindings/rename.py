"""Renaming a name in bindings: ``<< old.data >>`` becomes ``<< new.data >>``.

Only the name itself is replaced, where an expression reads it as a name: not inside a
string literal, not as an attribute (``x.old``), a filter or test name, nor a keyword
argument (``f(old=1)``). Each rewritten expression is parsed again; if what it reads is not
exactly what it read with ``old`` replaced by ``new``, it is left as it was.
"""

from __future__ import annotations

import re
from typing import Any

from bindings.templates import _find_close, compile_binding

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _rename_expression(expression: str, old: str, new: str) -> str:
    out: list[str] = []
    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch in "'\"":
            j = i + 1
            while j < n and expression[j] != ch:
                j += 2 if expression[j] == "\\" else 1
            out.append(expression[i : j + 1])
            i = j + 1
            continue
        match = _IDENT.match(expression, i)
        if match is None:
            out.append(ch)
            i += 1
            continue
        word = match.group()
        end = match.end()
        before = expression[:i].rstrip()
        after = expression[end:].lstrip()
        is_name = (
            word == old
            and not before.endswith((".", "|"))
            and not re.search(r"\bis(\s+not)?$", before)
            and not (after.startswith("=") and not after.startswith("=="))
        )
        out.append(new if is_name else word)
        i = end
    return "".join(out)


def rename_in_text(text: str, old: str, new: str) -> str:
    """``text`` with every binding reading ``old`` reading ``new`` instead."""
    if "<<" not in text or old not in text:
        return text
    out: list[str] = []
    i = 0
    while True:
        j = text.find("<<", i)
        if j < 0:
            out.append(text[i:])
            break
        if j > 0 and text[j - 1] == "\\":
            out.append(text[i : j + 2])
            i = j + 2
            continue
        end = _find_close(text, j + 2)
        if end < 0:  # unclosed: left as typed
            out.append(text[i:])
            break
        expression = text[j + 2 : end]
        out.append(text[i : j + 2])
        out.append(_checked(expression, old, new))
        out.append(">>")
        i = end + 2
    return "".join(out)


def _checked(expression: str, old: str, new: str) -> str:
    compiled = compile_binding(expression.strip())
    if compiled.error or old not in compiled.names:
        return expression
    renamed = _rename_expression(expression, old, new)
    again = compile_binding(renamed.strip())
    expected = (compiled.names - {old}) | {new}
    if again.error or again.names != expected:
        return expression
    return renamed


def rename_in(template: Any, old: str, new: str) -> Any:
    """``template`` (text, or lists and dicts of them: values only, not keys) with ``old``
    renamed to ``new`` in its bindings."""
    if isinstance(template, str):
        return rename_in_text(template, old, new)
    if isinstance(template, list):
        return [rename_in(item, old, new) for item in template]
    if isinstance(template, dict):
        return {key: rename_in(value, old, new) for key, value in template.items()}
    return template
