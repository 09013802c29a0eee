"""bindings.checks: keys a name does not have, with the closest one."""

from __future__ import annotations

from bindings import Attributes, check_names, is_incomplete

ATTRS = {
    "email_input": Attributes("an Input", ("value", "isValid")),
    "q": Attributes("a query", ("data", "error")),
}
KNOWN = {"email_input", "q", "user"}


def test_did_you_mean_for_a_dotted_or_quoted_key():
    warnings = check_names(
        "f", '<< email_input.valu >> << q["dat"]|length >>', KNOWN, attributes=ATTRS
    )
    assert warnings == [
        "f: `valu` is not a property of email_input (an Input): did you mean `value`? "
        "in << email_input.valu >>",
        'f: `dat` is not a property of q (a query): did you mean `data`? in << q["dat"]|length >>',
    ]


def test_no_close_key_lists_them_and_known_keys_methods_and_others_pass():
    (warning,) = check_names("f", "<< email_input.zzzz >>", KNOWN, attributes=ATTRS)
    assert warning.endswith("it has `value`, `isValid` in << email_input.zzzz >>")
    text = '<< email_input.value >> << email_input.get("value") >> << user.whatever >>'
    assert check_names("f", text, KNOWN, attributes=ATTRS) == []
    assert check_names("f", "<< email_input.valu >>", KNOWN) == []  # no attributes given


def test_an_unclosed_binding_is_incomplete_and_can_be_left_unwarned():
    assert is_incomplete("Hi << user.na") and is_incomplete(["x", {"a": "<< q"}])
    assert not is_incomplete("Hi << user.name >>") and not is_incomplete("<< 1 + >>")
    assert check_names("f", "Hi << user.na", KNOWN, skip_unclosed=True) == []
    assert check_names("f", "Hi << user.na", KNOWN)[0].startswith("f: unclosed <<")
