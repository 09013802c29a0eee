"""The << >> binding engine (the bindings package): values, escaping, errors, the sandbox."""

from __future__ import annotations

import json
import pickle

import pytest
from markupsafe import Markup

from bindings import (
    MAX_OUTPUT,
    MAX_PASSED,
    MAX_VALUE,
    BindingError,
    check_names,
    evaluate,
    evaluate_fields,
    evaluation,
    has_bindings,
    is_literal,
    referenced_names,
    sandbox,
    templates,
)


@pytest.fixture
def ctx():
    """A binding context as the run service builds it: plain dicts by name."""
    return {
        "form1": {"data": {"email": "Ann@Example.com", "name": "Ann", "tags": ["a", "b"]}},
        "email_input": {"value": "bob@example.com"},
        "files1": {"files": [{"name": "report.pdf", "size": 1200}]},
        "table1": {"selected_row": {"id": 7, "email": "row@example.com"}, "data": []},
        "send_welcome": {
            "data": {"success": True, "message": "Email sent successfully"},
            "error": None,
            "status": "success",
            "last_run_at": "2025-01-01T10:00:00+00:00",
        },
        "user": {"email": "builder@example.com", "name": "Bea <admin>"},
        "url": {"id": "42"},
        "app": {"name": "CRM"},
        "page": {"name": "Home"},
        "count": 3,
        "nothing": None,
        "html": "<b>bold</b> & co",
        "sneaky": "<< user.email >> {{ 7 * 7 }} {% if true %}x{% endif %}",
        "w": {},
    }


def refusal(template, ctx=None, field="body", **kwargs) -> BindingError:
    with pytest.raises(BindingError) as info:
        evaluate(field, template, ctx or {}, **kwargs)
    return info.value


# --------------------------------------------------------------------- values


def test_a_single_binding_yields_a_list(ctx):
    assert evaluate("attachments", "<< files1.files >>", ctx) == [
        {"name": "report.pdf", "size": 1200}
    ]


def test_a_single_binding_yields_a_dict(ctx):
    assert evaluate("f", "<< table1.selected_row >>", ctx) == {"id": 7, "email": "row@example.com"}


def test_a_single_binding_yields_a_number(ctx):
    assert evaluate("f", "<< count * 2 >>", ctx) == 6


def test_a_single_binding_yields_none(ctx):
    assert evaluate("f", "<< nothing >>", ctx) is None


def test_whitespace_around_a_single_binding_keeps_the_native_value(ctx):
    assert evaluate("f", "  << form1.data.tags >>\n", ctx) == ["a", "b"]


def test_lazy_results_become_lists(ctx):
    assert evaluate("f", "<< range(3) >>", ctx) == [0, 1, 2]
    assert evaluate("f", "<< form1.data.tags|map('upper') >>", ctx) == ["A", "B"]


def test_text_with_bindings_yields_a_string(ctx):
    assert evaluate("subject", "Hi << form1.data.name >>, you have << count >> items", ctx) == (
        "Hi Ann, you have 3 items"
    )


def test_none_in_text_becomes_empty(ctx):
    assert evaluate("f", "[<< nothing >>]", ctx) == "[]"


def test_a_field_without_bindings_is_returned_as_is(ctx):
    assert evaluate("f", "plain text", ctx) == "plain text"


@pytest.mark.parametrize("value", [42, 1.5, True, None])
def test_non_string_fields_are_returned_unchanged(ctx, value):
    assert evaluate("f", value, ctx) is value


def test_lists_and_dicts_are_evaluated_item_by_item(ctx):
    template = {"to": ["<< form1.data.email >>", "x@example.com", 3], "n": {"k": "<< count >>"}}
    assert evaluate("f", template, ctx) == {
        "to": ["Ann@Example.com", "x@example.com", 3],
        "n": {"k": 3},
    }


def test_an_error_inside_a_list_names_the_field(ctx):
    assert refusal(["ok", "<< form9.x >>"], ctx, field="to").field == "to"


def test_evaluate_fields_evaluates_each_field_under_its_name(ctx):
    result = evaluate_fields(
        {"to": "<< form1.data.email >>", "body": "<p><< html >></p>", "n": 1},
        ctx,
        html_fields={"body"},
    )
    assert result == {
        "to": "Ann@Example.com",
        "body": "<p>&lt;b&gt;bold&lt;/b&gt; &amp; co</p>",
        "n": 1,
    }


def test_evaluate_fields_names_the_failing_field(ctx):
    with pytest.raises(BindingError) as info:
        evaluate_fields({"to": "<< form1.data.email >>", "cc": "<< form9.x >>"}, ctx)
    assert info.value.field == "cc"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("<< form1.data.email >>", "Ann@Example.com"),
        ("<< email_input.value >>", "bob@example.com"),
        ("<< files1.files[0].name >>", "report.pdf"),
        ("<< table1.selected_row.email >>", "row@example.com"),
        ("<< send_welcome.data.message >>", "Email sent successfully"),
        ("<< send_welcome.status >>", "success"),
        ("<< send_welcome.error >>", None),
        ("<< user.email >>", "builder@example.com"),
        ("<< url.id >>", "42"),
        ("<< app.name >>", "CRM"),
        ("<< page.name >>", "Home"),
    ],
)
def test_it_reads_every_documented_name_style(ctx, template, expected):
    assert evaluate("f", template, ctx) == expected


def test_it_applies_filters(ctx):
    assert evaluate("f", "<< form1.data.email|lower >>", ctx) == "ann@example.com"
    assert evaluate("f", "<< form1.data.tags|join(', ') >>", ctx) == "a, b"
    assert evaluate("f", "<< url.missing|default('none') >>", ctx) == "none"
    assert evaluate("f", "<< '%s <%s>'|format(form1.data.name, user.email) >>", ctx) == (
        "Ann <builder@example.com>"
    )


# ------------------------------------------------------------------- escaping


def test_a_backslash_writes_a_literal_double_angle(ctx):
    assert evaluate("f", r"\<< count >> is << count >>", ctx) == "<< count >> is 3"


def test_an_escaped_binding_alone_is_text(ctx):
    assert evaluate("f", r"\<< count >>", ctx) == "<< count >>"
    assert not has_bindings(r"\<< count >>")


def test_jinja_template_syntax_is_literal_text(ctx):
    template = "{{ 7 * 7 }} {% for x in y %}{% endfor %} {# c #} << count >>"
    assert evaluate("f", template, ctx) == "{{ 7 * 7 }} {% for x in y %}{% endfor %} {# c #} 3"


def test_statements_inside_a_binding_are_a_syntax_error(ctx):
    err = refusal("<< {% for x in y %} >>", ctx)
    assert err.message.startswith("syntax error")


def test_a_value_holding_bindings_is_never_rendered_again(ctx):
    assert evaluate("f", "<< sneaky >>", ctx) == ctx["sneaky"]
    assert evaluate("f", "Value: << sneaky >>", ctx) == "Value: " + ctx["sneaky"]


def test_a_closing_mark_inside_a_string_literal_does_not_end_the_binding(ctx):
    assert evaluate("f", "<< 'a >> b' >>", ctx) == "a >> b"


# ----------------------------------------------------------------------- HTML


def test_html_fields_escape_interpolated_values(ctx):
    assert evaluate("body", "<p>Hi << user.name >></p>", ctx, html=True) == (
        "<p>Hi Bea &lt;admin&gt;</p>"
    )


def test_html_fields_keep_safe_values(ctx):
    assert evaluate("body", "<div><< html|safe >></div>", ctx, html=True) == (
        "<div><b>bold</b> & co</div>"
    )


def test_a_single_html_binding_is_escaped_unless_safe(ctx):
    assert evaluate("body", "<< html >>", ctx, html=True) == "&lt;b&gt;bold&lt;/b&gt; &amp; co"
    assert evaluate("body", "<< html|safe >>", ctx, html=True) == Markup("<b>bold</b> & co")


def test_a_single_html_binding_keeps_native_non_strings(ctx):
    assert evaluate("body", "<< form1.data.tags >>", ctx, html=True) == ["a", "b"]


def test_non_html_fields_are_not_escaped(ctx):
    assert evaluate("subject", "Re: << html >>", ctx) == "Re: <b>bold</b> & co"


# --------------------------------------------------------------------- errors


def test_it_refuses_an_unknown_name_naming_the_field(ctx):
    err = refusal("Hello << form9.x >>", ctx, field="to")
    assert (err.field, err.expression) == ("to", "form9.x")
    assert err.message == "unknown name 'form9'"
    assert str(err) == "to: unknown name 'form9' in << form9.x >>"


def test_it_refuses_an_unknown_attribute_naming_the_path(ctx):
    assert refusal("<< form1.x >>", ctx).message == "'form1' has no attribute 'x'"
    assert refusal("<< form1.data.x >>", ctx).message == "'form1.data' has no attribute 'x'"
    assert refusal("<< w.value >>", ctx).message == "'w' has no attribute 'value'"


def test_it_refuses_a_missing_item(ctx):
    assert refusal("<< files1.files[5] >>", ctx).message == "'files1.files' has no item 5"


def test_an_unknown_name_is_never_an_empty_string(ctx):
    assert refusal("Dear << form9.name >>,", ctx).message == "unknown name 'form9'"
    assert refusal("<< [form9] >>", ctx).message == "unknown name 'form9'"


def test_it_reports_syntax_errors(ctx):
    err = refusal("<< form1.data. >>", ctx, field="subject")
    assert err.message.startswith("syntax error: ")
    assert err.expression == "form1.data."
    assert str(err).startswith("subject: syntax error: ")


def test_it_reports_an_empty_binding(ctx):
    assert refusal("<<   >>", ctx).message == "syntax error: empty binding"


def test_it_refuses_an_unclosed_binding(ctx):
    err = refusal("Hi << form1.data.name", ctx, field="subject")
    assert err.message.startswith("unclosed << in field")
    assert err.expression == ""
    assert str(err).startswith("subject: unclosed << in field")


def test_it_reports_python_errors_of_the_expression(ctx):
    assert refusal("<< 1 / 0 >>", ctx).message == "failed: ZeroDivisionError: division by zero"
    assert refusal("<< 'a' + 1 >>", ctx).message.startswith("failed: TypeError: ")


def test_it_reports_unknown_filters(ctx):
    assert refusal("<< count|nope >>", ctx).message == "unknown filter 'nope'"


def test_binding_errors_survive_pickling(ctx):
    err = pickle.loads(pickle.dumps(refusal("<< form9.x >>", ctx, field="to")))
    assert str(err) == "to: unknown name 'form9' in << form9.x >>"


# -------------------------------------------------------------------- sandbox


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__",
        "''.__class__.__mro__",
        "().__class__.__base__.__subclasses__()",
        "form1.__class__",
        "form1['__class__']",
        "form1.data.tags|map(attribute='__class__')|list",
        "''.__class__ is defined",
        "''.__class__|default('hidden')",
    ],
)
def test_it_refuses_private_attributes(ctx, expression):
    err = refusal(f"<< {expression} >>", ctx)
    assert "not allowed" in err.message
    assert "unsafe" in err.message


def test_it_refuses_the_attr_filter(ctx):
    assert refusal("<< ''|attr('__class__') >>", ctx).message == "filter 'attr' is not allowed"


@pytest.mark.parametrize(
    "expression",
    [
        "'{0.__class__}'.format(count)",
        "'{0}'.format(count)",
        "'{a.__class__}'.format_map({'a': 1})",
        "(html|safe).format(count)",
    ],
)
def test_it_refuses_str_format(ctx, expression):
    assert "is not allowed (unsafe)" in refusal(f"<< {expression} >>", ctx).message


def test_the_format_filter_cannot_reach_attributes(ctx):
    assert "not allowed" in refusal("<< '%s'|format(''.__class__) >>", ctx).message
    assert "not allowed" in refusal("<< '%s' % ''.__class__ >>", ctx).message


def test_it_refuses_to_modify_values(ctx):
    assert "not allowed" in refusal("<< form1.data.tags.append(1) >>", ctx).message
    assert ctx["form1"]["data"]["tags"] == ["a", "b"]


@pytest.mark.parametrize("name", ["lipsum", "cycler", "joiner", "namespace"])
def test_stateful_and_text_making_globals_are_gone(ctx, name):
    assert refusal(f"<< {name}() >>", ctx).message == f"unknown name '{name}'"


def test_it_refuses_the_template_reference(ctx):
    assert refusal("<< self >>", ctx).message == "name 'self' is reserved"


# ---------------------------------------------------------------------- limits


def test_it_refuses_a_huge_range(ctx):
    assert refusal("<< range(10**9) >>", ctx).message.startswith("range too large")
    assert refusal("<< range(10**30) >>", ctx).message.startswith("range too large")
    assert len(evaluate("f", "<< range(10000) >>", ctx)) == 10_000


@pytest.mark.parametrize(
    "expression",
    [
        "'a' * 10**9",
        "10**9 * 'a'",
        "[1] * 10**8",
        "('a' * 99999) + ('b' * 10)",
        "'x' ~ ('a' * 99999) ~ ('b' * 10)",
        "'a'.center(10**9)",
        "'a'|center(10**9)",
        "'a'.zfill(10**9)",
        "('\t' * 1000).expandtabs(1000)",
        "('a' * 50000)|replace('a', 'bbb')",
        "(range(10000)|map('string'))|join('x' * 50)",
        "'x'.join(range(10000)|map('string')) * 20",
        "'%0999999999d' % 1",
        "'%.200000f'|format(1.5)",
        "[1]|batch(10**9, 'x')|list",
        "('\n' * 50000)|indent(10, blank=true)",
        "(html|safe).center(10**9)",
    ],
)
def test_it_refuses_huge_results_before_building_them(ctx, expression):
    assert "too large" in refusal(f"<< {expression} >>", ctx).message


@pytest.mark.parametrize(
    "template",
    [
        "Files: << [big] * 1000 >>",
        "<< ([big] * 1000) ~ '' >>",
        "<< ([big] * 1000)|string >>",
        "<< ([big] * 1000)|join >>",
        "<< ([{'a': big}] * 100)|join(attribute='a') >>",
        "<< '%s' % ([big] * 100,) >>",
        "<< '%s'|format([big] * 100) >>",
        "<< dict.fromkeys(range(10000), big)|tojson >>",
        "<< range(10000)|map(attribute='x', default=big)|unique|list >>",
        "<< ([big, big] * 5000)|sort >>",
        "<< big.encode().replace('x'.encode(), 'yy'.encode()) >>",
    ],
)
def test_it_refuses_repeating_a_long_value_into_a_huge_text(template):
    # Lists of references are cheap to build; turning them into text, sorting or comparing
    # them is not.
    err = refusal(template, {"big": "x" * 90_000})
    assert err.message.startswith(("result too large", "too much work")), err.message


def test_it_refuses_a_huge_native_value():
    err = refusal("<< [big] * 20 >>", {"big": "x" * 90_000})
    assert err.message.startswith("result too large")


def test_it_allows_ordinary_work_on_a_table():
    table = [{"email": f"user{i}@example.com", "n": i} for i in range(2000)]
    template = "<< rows|sort(attribute='n', reverse=true)|map(attribute='email')|first >>"
    assert evaluate("f", template, {"rows": table}) == "user1999@example.com"


def test_it_refuses_a_huge_slice_count(ctx):
    assert refusal("<< [1]|slice(10**9)|list >>", ctx).message.startswith("slice count too large")


def test_it_refuses_star_widths_in_percent_formatting(ctx):
    assert "'*' width" in refusal("<< '%*d' % (10**9, 1) >>", ctx).message


def test_it_refuses_summing_sequences(ctx):
    assert "only adds numbers" in refusal("<< [[1], [2]]|sum(start=[]) >>", ctx).message
    assert evaluate("f", "<< [1, 2, 3]|sum >>", ctx) == 6


def test_it_refuses_big_powers(ctx):
    assert refusal("<< 9**(9**9) >>", ctx).message.startswith("exponent too large")
    assert refusal("<< (2**99)**99 >>", ctx).message.startswith("chained ** is not allowed")
    assert refusal("<< 10**100 * 10**100 * (10**99)**1 >>", ctx).message.startswith(
        "chained ** is not allowed"
    )
    assert refusal("<< big**50 >>", {"big": 2**300}).message.startswith("number too large")
    assert evaluate("f", "<< 2**10 >>", ctx) == 1024


def test_it_refuses_chained_powers_which_jinja_computes_left_to_right(ctx):
    assert refusal("<< 9**9**9 >>", ctx).message.startswith("chained ** is not allowed")


def test_it_refuses_multiplying_into_huge_numbers():
    err = refusal("<< big * big * big * big >>", {"big": 10**1000})
    assert err.message.startswith("number too large")


def test_it_refuses_too_much_work(ctx):
    err = refusal("<< range(10000)|map('center', 99999)|list|length >>", ctx)
    assert err.message.startswith("too much work")


def test_it_refuses_long_output(ctx):
    err = refusal("<< 'a' * 60000 >><< 'b' * 60000 >>", ctx, field="body")
    assert err.message.startswith("output too long")
    assert err.field == "body"


def test_it_refuses_long_output_of_a_single_binding(ctx):
    long_text = "x" * (MAX_OUTPUT + 1)
    for built in ("<< text ~ '' >>", "<< text|upper >>", "<< text[:] >>", "<< (text) ~ 'y' >>"):
        message = refusal(built, {"text": long_text}).message
        assert message.startswith(("output too long", "result too large")), built


def test_a_value_only_read_from_the_context_passes_up_to_max_passed():
    # Data the caller gave (a file picker's data URLs) is passed on, not built, into a
    # field that allows it (a files field).
    long_text = "x" * (MAX_OUTPUT + 1)
    files = [{"name": "a.pdf", "data": "data:application/pdf;base64," + "A" * (MAX_VALUE + 1)}]
    context = {"text": long_text, "files1": {"files": files}}
    passing = {"max_passed": MAX_PASSED}
    assert evaluate("attachments", "<< text >>", context, **passing) == long_text
    assert evaluate("attachments", "<< files1.files >>", context, **passing) is files
    data = evaluate("attachments", "<< files1['files'][0].data >>", context, **passing)
    assert data == files[0]["data"]
    too_long = {"text": "x" * (MAX_PASSED + 1)}
    assert refusal("<< text >>", too_long, **passing).message.startswith("output too long")


def test_without_max_passed_a_read_value_keeps_the_usual_caps():
    # A subject, a body or << query1.data >>: not a files field, so 30 MB is refused.
    long_text = "x" * (MAX_OUTPUT + 1)
    assert refusal("<< text >>", {"text": long_text}).message.startswith("output too long")
    assert refusal("<< q.data >>", {"q": {"data": [long_text] * 11}}).message.startswith(
        "result too large"
    )


# --------------------------------------------------------------------- JSON text

INJECTION = '1>", "List-Unsubscribe": "<https://evil.example/>", "X-Spy": "spy@evil.example'


def test_a_value_bound_into_json_text_stays_inside_its_string():
    template = '{"List-Unsubscribe": "<https://x/u?id=<< form1.data.id >>>", "X-A": "b"}'
    text = evaluate("headers", template, {"form1": {"data": {"id": INJECTION}}}, json_text=True)
    assert json.loads(text) == {"List-Unsubscribe": f"<https://x/u?id={INJECTION}>", "X-A": "b"}


@pytest.mark.parametrize("value", ['a"b', "a\\b", "line\nbreak", "tab\t", "é 😀", "\u2028", 42])
def test_json_escaping_gives_back_the_value_exactly(value):
    text = evaluate("headers", '{"X": "<< v >>"}', {"v": value}, json_text=True)
    assert json.loads(text) == {"X": str(value)}


def test_a_whole_field_binding_in_json_text_is_its_value_unescaped():
    pairs = {"X-Reference-Id": 'order "42"'}
    assert evaluate("headers", "<< h >>", {"h": pairs}, json_text=True) is pairs
    assert evaluate("headers", "<< t >>", {"t": '{"X": "1"}'}, json_text=True) == '{"X": "1"}'
    # A stored dict's values are values, not JSON text.
    stored = {"X": 'say "<< v >>"'}
    assert evaluate("headers", stored, {"v": 'a"b'}, json_text=True) == {"X": 'say "a"b"'}


def test_safe_does_not_lift_json_escaping():
    text = evaluate("headers", '{"X": "<< v|safe >>"}', {"v": 'a", "Y": "b'}, json_text=True)
    assert json.loads(text) == {"X": 'a", "Y": "b'}


def test_an_html_field_escapes_so_a_read_value_is_capped_as_built():
    long_text = "x" * (MAX_OUTPUT + 1)
    with pytest.raises(BindingError) as caught:
        evaluate("body", "<< text >>", {"text": long_text}, html=True)
    assert caught.value.message.startswith("output too long")


def test_it_refuses_deep_nesting(ctx):
    deep = "(" * 200 + "1" + ")" * 200
    assert refusal(f"<< {deep} >>", ctx).message.startswith("expression nested too deeply")
    nested = "[" * 40 + "1" + "]" * 40
    assert refusal(f"<< {nested} >>", ctx).message.startswith("expression nested too deeply")
    chain = "count" + "|string" * 40
    assert refusal(f"<< {chain} >>", ctx).message.startswith("expression nested too deeply")


def test_it_refuses_an_overlong_expression(ctx):
    expression = " ~ ".join(["count"] * 3000)
    assert refusal(f"<< {expression} >>", ctx).message.startswith("expression too long")


def test_it_stops_when_the_time_limit_is_spent(ctx, monkeypatch):
    monkeypatch.setattr(evaluation, "TIME_LIMIT", 0.0)
    err = refusal("<< range(100)|map('string')|list >>", ctx)
    assert err.message.startswith("took too long")


# ------------------------------------------------------------------- the editor


def test_has_bindings():
    assert has_bindings("Hi << form1.data.name >>")
    assert not has_bindings("Hi {{ name }}")
    assert not has_bindings(r"\<< escaped >>")
    assert not has_bindings("a << b")
    assert not has_bindings(["<< x >>"])
    assert not has_bindings(None)


@pytest.mark.parametrize(
    "template",
    [
        "plain text",
        "",
        None,
        42,
        [{"id": 1, "name": "Ann", "tags": ["a", "b"]}, {"id": 2, "amount": 2.5}],
        {"a": {"b": ["c", "{{ d }}"]}},
    ],
)
def test_a_literal_evaluates_to_itself(ctx, template):
    assert is_literal(template)
    assert evaluate("f", template, ctx) == template


@pytest.mark.parametrize(
    "template",
    [
        "<< url.id >>",
        r"\<< escaped >>",
        "a << b",
        [{"id": 1}, {"name": "<< user.name >>"}],
        {"a": {"b": ["c", "x << y"]}},
    ],
)
def test_text_with_a_binding_escape_or_unclosed_opener_is_not_literal(template):
    assert not is_literal(template)


def test_referenced_names_lists_top_level_names():
    template = "<< form1.data.email >> and << user.name|upper >> << range(3)|list >>"
    assert referenced_names(template) == {"form1", "user"}


def test_referenced_names_reads_lists_and_dicts():
    assert referenced_names({"to": ["<< a.x >>", "<< b[c] >>"], "n": 1}) == {"a", "b", "c"}


def test_referenced_names_can_skip_the_texts_with_errors():
    fields = {"to": "<< a.x >>", "bad": "<< b. >>", "open": "<< c", "both": "<< d >> << e. >>"}
    assert referenced_names(fields, skip_errors=True) == {"a"}


def test_referenced_names_raises_on_syntax_errors():
    with pytest.raises(BindingError):
        referenced_names("<< form1.data. >>")
    with pytest.raises(BindingError):
        referenced_names("<< form1")


def test_check_names_warns_about_unknown_names():
    warnings = check_names("to", "<< form1.data.email >>, << form9.x >>", ["form1", "user"])
    assert warnings == ["to: unknown name 'form9' in << form9.x >>"]


def test_check_names_warns_about_syntax_errors_and_never_raises():
    warnings = check_names("to", ["<< x + >>", "<< y"], ["x"])
    assert warnings[0].startswith("to: syntax error: ")
    assert warnings[1].startswith("to: unclosed << in field")
    assert check_names("to", 42, []) == []


def test_compiled_expressions_are_cached(ctx, monkeypatch):
    calls = []
    compile_expression = sandbox.ENV.compile_expression

    def counting(source, **kwargs):
        calls.append(source)
        return compile_expression(source, **kwargs)

    monkeypatch.setattr(sandbox.ENV, "compile_expression", counting)
    templates.compile_binding.cache_clear()
    for _ in range(3):
        assert evaluate("f", "<< count + 1 >> and << count + 1 >>", ctx) == "4 and 4"
    assert calls == ["count + 1"]


def test_a_string_binding_can_write_a_backslash_before_another_binding(ctx):
    assert evaluate("f", "C:<< '\\\\' >><< count >>", ctx) == "C:\\3"
