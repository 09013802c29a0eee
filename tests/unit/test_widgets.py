"""Widget types: properties, state read from a posted page, validation and rendering."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from django.utils.safestring import SafeString, mark_safe

from widgets import TYPES, Prop, RenderAttrs, Renderer, WidgetSpec, WidgetType, get_type
from workspaces.files import FileContent

MB = 1024 * 1024
# The browser-side behaviour of the widgets lives in the viewer's static script.
VIEWER_JS = (Path(__file__).resolve().parents[2] / "static" / "js" / "viewer.js").read_text()
CLICK = mark_safe('hx-post="/event" hx-vals="{&quot;widget&quot;: &quot;b1&quot;}"')
REFRESH = mark_safe('hx-post="/refresh/t1" hx-target="#w-t1"')


def spec(type_: str, name: str | None = None, children=(), **props) -> WidgetSpec:
    widget_type = get_type(type_)
    return WidgetSpec(
        name=name or f"{type_}1",
        type=type_,
        props=widget_type.props_with_defaults(props),
        children=tuple(children),
    )


def post(pairs=(), **values) -> QueryDict:
    data = QueryDict(mutable=True)
    for key, value in [*pairs, *values.items()]:
        data.appendlist(key, value)
    return data


def state_of(s: WidgetSpec, data=None, files=None, child_states=None) -> dict:
    return get_type(s.type).read_state(
        s, data if data is not None else QueryDict(), files or MultiValueDict(), child_states or {}
    )


def render(s: WidgetSpec, *, state=None, errors=(), prop_errors=None, children=(), attrs=None):
    return get_type(s.type).render(
        s,
        state=state,
        errors=list(errors),
        prop_errors=prop_errors or {},
        children_html=list(children),
        attrs=attrs or RenderAttrs(events={}),
    )


def validate(s: WidgetSpec, state: dict) -> list[str]:
    return get_type(s.type).validate(s, state)


def upload(name: str, size: int, content_type: str = "application/pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"x" * size, content_type=content_type)


def files_of(name: str, *uploads) -> MultiValueDict:
    return MultiValueDict({name: list(uploads)})


# Registry -------------------------------------------------------------------------------
def test_registry_has_every_type():
    assert set(TYPES) == {
        "text",
        "input",
        "select",
        "checkbox",
        "button",
        "form",
        "filepicker",
        "table",
        "container",
        "modal",
    }
    for name, widget_type in TYPES.items():
        assert isinstance(widget_type, WidgetType)
        assert widget_type.type == name
        names = [p.name for p in widget_type.props]
        assert len(names) == len(set(names)), name
        assert {"visible", "tooltip"} <= set(names), name
        assert widget_type.template == f"widgets/{name}.html"


def test_get_type_refuses_unknown():
    with pytest.raises(LookupError):
        get_type("chart")


def test_input_like_types_have_the_field_props():
    for name in ("input", "select"):
        props = {p.name for p in get_type(name).props}
        assert {"label", "placeholder", "default_value", "required", "disabled"} <= props


def test_containers_are_marked():
    assert {n for n, t in TYPES.items() if t.container} == {"form", "container", "modal"}


def test_events():
    assert get_type("button").events == ("click",)
    assert get_type("form").events == ("submit",)
    assert "row_selected" in get_type("table").events


def test_props_with_defaults_fills_in_and_keeps_given_values():
    merged = get_type("input").props_with_defaults({"label": "Email", "legacy": 1})
    assert merged["label"] == "Email"
    assert merged["visible"] is True
    assert merged["input_type"] == "text"
    assert merged["legacy"] == 1


def test_list_defaults_are_not_shared():
    table = get_type("table")
    first = table.props_with_defaults({})
    first["data"].append({"a": 1})
    assert table.props_with_defaults({})["data"] == []


def test_unknown_prop_kind_is_refused():
    with pytest.raises(ValueError):
        Prop("x", "X", "colour")


def test_render_returns_safe_string():
    html = render(spec("text"))
    assert isinstance(html, SafeString)


# Every widget ---------------------------------------------------------------------------
@pytest.mark.parametrize("type_", sorted(TYPES))
def test_default_props_render(type_):
    html = render(spec(type_))
    assert f'data-widget="{type_}1"' in html
    assert "<form" not in html


@pytest.mark.parametrize("type_", sorted(TYPES))
def test_invisible_renders_nothing(type_):
    assert render(spec(type_, visible=False)) == ""


@pytest.mark.parametrize("type_", sorted(TYPES))
def test_visible_as_text_false(type_):
    assert render(spec(type_, visible="false")) == ""


@pytest.mark.parametrize("type_", sorted(TYPES))
def test_binding_error_shown_and_widget_still_renders(type_):
    html = render(spec(type_, tooltip="<< oops"), prop_errors={"tooltip": "unclosed << <b>"})
    assert 'class="kiln-binding-error"' in html
    assert "Tooltip" in html
    assert "unclosed &lt;&lt; &lt;b&gt;" in html
    # The failed property falls back to its default: no tooltip at all.
    assert "oops" not in html


@pytest.mark.parametrize("type_", sorted(TYPES))
def test_errors_rendered_under_the_field(type_):
    html = render(spec(type_), errors=["First <problem>", "Second"])
    assert f'<div class="kiln-field-errors" id="{type_}1-errors" role="alert">' in html
    assert "<div>First &lt;problem&gt;</div><div>Second</div>" in html


@pytest.mark.parametrize("type_", sorted(TYPES))
def test_tooltip_is_title(type_):
    html = render(spec(type_, tooltip='Say "hi" <now>'))
    assert 'title="Say &quot;hi&quot; &lt;now&gt;"' in html


def test_failed_binding_uses_the_default():
    html = render(spec("text", text="whatever"), prop_errors={"text": "boom"})
    assert ">Text</p>" in html
    assert "whatever" not in html


def test_unreadable_property_is_reported_and_defaulted():
    s = spec("input", input_type="number", min="lots")
    html = render(s)
    assert "kiln-binding-error" in html
    assert "“lots” is not a number." in html
    assert validate(s, {"text": "1"}) == []


# Text -----------------------------------------------------------------------------------
def test_text_state_and_styles():
    s = spec("text", text="Hello\nworld", style="heading")
    assert state_of(s) == {"text": "Hello\nworld"}
    assert '<h2 class="kiln-text-content kiln-text-heading">Hello\nworld</h2>' in render(s)
    assert 'class="kiln-text-content kiln-text-muted"' in render(spec("text", style="muted"))


def test_text_escapes_its_text():
    html = render(spec("text", text="<script>alert(1)</script>"))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_text_shows_structures_as_json():
    s = spec("text", text={"ok": True, "n": [1, 2]})
    assert state_of(s)["text"] == '{"ok":true,"n":[1,2]}'


def test_unknown_style_falls_back():
    html = render(spec("text", style="shouty"))
    assert "kiln-text-body" in html
    assert "kiln-binding-error" in html


# Input ----------------------------------------------------------------------------------
def test_input_renders_label_placeholder_and_default():
    s = spec("input", label="Email", placeholder="you@example.com", default_value="a@b.c")
    html = render(s)
    assert '<label class="kiln-label" for="input1-input">Email</label>' in html
    assert 'name="input1"' in html
    assert 'placeholder="you@example.com"' in html
    assert 'value="a@b.c"' in html


def test_input_required_shows_asterisk():
    html = render(spec("input", label="Name", required=True))
    # The asterisk is drawn by CSS, outside the label's accessible name.
    assert '<label class="kiln-label kiln-required" for="input1-input">Name</label>' in html
    assert " required" in html
    assert '<label class="kiln-label" for' in render(spec("input", label="Name"))


def test_input_disabled():
    assert re.search(r"<input[^>]* disabled", render(spec("input", disabled=True)))


def test_multiline_is_a_textarea():
    html = render(spec("input", input_type="multiline", default_value="line 1\nline 2"))
    assert "<textarea" in html
    assert 'name="input1"' in html
    assert "line 1\nline 2</textarea>" in html


def test_input_state_round_trip():
    s = spec("input", label="Name")
    assert state_of(s, post(input1="Ada")) == {"value": "Ada", "text": "Ada", "isValid": True}


def test_input_state_without_post_is_the_default():
    s = spec("input", default_value="hello")
    assert state_of(s)["value"] == "hello"


def test_disabled_input_keeps_its_default():
    s = spec("input", default_value="fixed", disabled=True)
    assert state_of(s, post(input1="hacked"))["value"] == "fixed"


def test_number_input_value_is_a_number():
    s = spec("input", input_type="number")
    assert state_of(s, post(input1="42"))["value"] == 42
    assert state_of(s, post(input1="2.5"))["value"] == 2.5
    state = state_of(s, post(input1="abc"))
    assert state == {"value": "abc", "text": "abc", "isValid": False}


def test_input_required_message():
    s = spec("input", label="Name", required=True)
    state = state_of(s, post(input1="  "))
    assert state["isValid"] is False
    assert validate(s, state) == ["Name is required."]


def test_required_message_uses_the_name_without_a_label():
    s = spec("input", required=True)
    assert validate(s, {"value": "", "text": ""}) == ["input1 is required."]


def test_email_syntax():
    s = spec("input", label="Email", input_type="email")
    assert validate(s, state_of(s, post(input1="not-an-email"))) == ["Enter a valid email address."]
    good = state_of(s, post(input1=" ada@example.test "))
    assert good["isValid"] is True
    assert good["value"] == "ada@example.test"


def test_empty_optional_email_is_fine():
    s = spec("input", input_type="email")
    assert validate(s, state_of(s, post(input1=""))) == []


def test_regex_must_match_the_whole_value():
    s = spec(
        "input",
        label="Code",
        regex=r"[A-Z]{2}\d{2}",
        regex_message="Use two letters and two digits.",
    )
    assert validate(s, state_of(s, post(input1="AB12"))) == []
    assert validate(s, state_of(s, post(input1="AB123"))) == ["Use two letters and two digits."]


def test_regex_default_message():
    s = spec("input", label="Code", regex=r"\d+")
    assert validate(s, {"text": "x"}) == ["Code is not in the expected format."]


def test_invalid_regex_is_a_property_problem_not_a_crash():
    s = spec("input", regex="(")
    assert validate(s, {"text": "x"}) == []
    assert "not a valid regular expression" in render(s)


def test_number_min_max():
    s = spec("input", label="Age", input_type="number", min=18, max=99)
    assert validate(s, {"text": "17"}) == ["Age must be at least 18."]
    assert validate(s, {"text": "100"}) == ["Age must be at most 99."]
    assert validate(s, {"text": "30"}) == []
    assert validate(s, {"text": "thirty"}) == ["Age must be a number."]
    html = render(s)
    assert 'type="number"' in html
    assert 'min="18"' in html
    assert 'max="99"' in html


def test_text_min_max_are_lengths():
    s = spec("input", label="Nick", min=3, max=5)
    assert validate(s, {"text": "ab"}) == ["Nick must be at least 3 characters."]
    assert validate(s, {"text": "abcdef"}) == ["Nick must be at most 5 characters."]
    assert validate(s, {"text": "abcd"}) == []


def test_error_message_replaces_the_default_but_not_required():
    s = spec(
        "input",
        label="Age",
        input_type="number",
        min=18,
        required=True,
        error_message="Adults only.",
    )
    assert validate(s, {"text": "12"}) == ["Adults only."]
    assert validate(s, {"text": ""}) == ["Age is required."]


def test_hidden_input_is_not_validated():
    s = spec("input", required=True, visible=False)
    assert state_of(s)["isValid"] is True


def test_input_keeps_the_posted_value():
    s = spec("input", default_value="default")
    state = state_of(s, post(input1="typed by the user"))
    html = render(s, state=state, errors=["Bad"])
    assert 'value="typed by the user"' in html
    assert 'aria-invalid="true"' in html
    # The reset button goes back to the default.
    assert 'data-default="default"' in html


def test_password_is_never_echoed():
    s = spec("input", input_type="password")
    html = render(s, state=state_of(s, post(input1="s3cret")))
    assert "s3cret" not in html
    assert 'type="password"' in html


def test_input_value_is_escaped():
    s = spec("input")
    html = render(s, state=state_of(s, post(input1='"><script>alert(1)</script>')))
    assert "<script>" not in html
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_textarea_value_is_escaped():
    s = spec("input", input_type="multiline")
    html = render(s, state=state_of(s, post(input1="</textarea><script>x</script>")))
    assert "<script>" not in html
    assert "&lt;/textarea&gt;&lt;script&gt;" in html


def test_state_set_by_an_action_renders():
    # The runtime's "set value" action hands a state with only value and text.
    html = render(spec("input"), state={"value": 7, "text": "7"})
    assert 'value="7"' in html


def test_input_change_event_attrs_pasted():
    html = render(spec("input"), attrs=RenderAttrs(events={"change": CLICK}))
    assert CLICK in html


# Select ---------------------------------------------------------------------------------
OPTIONS = [{"label": "Red", "value": "r"}, {"label": "Two", "value": 2}, "plain"]


def test_select_renders_options():
    html = render(spec("select", label="Colour", options=OPTIONS, placeholder="Pick one"))
    assert '<option value="r">Red</option>' in html
    assert '<option value="2">Two</option>' in html
    assert '<option value="plain">plain</option>' in html
    assert "Pick one" in html
    assert '<option value="" selected>' in html


def test_select_state_round_trip():
    s = spec("select", options=OPTIONS)
    state = state_of(s, post(select1="2"))
    assert state == {
        "value": 2,
        "selectedOption": {"label": "Two", "value": 2},
        "isValid": True,
    }
    assert '<option value="2" selected>' in render(s, state=state)


def test_select_default_value():
    s = spec("select", options=OPTIONS, default_value="r")
    assert state_of(s)["value"] == "r"
    assert '<option value="r" selected>' in render(s)


def test_select_options_as_json_text():
    s = spec("select", options='[{"label": "A", "value": "a"}]')
    assert state_of(s, post(select1="a"))["selectedOption"] == {"label": "A", "value": "a"}


def test_select_required_and_unknown_value():
    s = spec("select", label="Colour", options=OPTIONS, required=True)
    assert validate(s, state_of(s, post(select1=""))) == ["Colour is required."]
    state = state_of(s, post(select1="blue"))
    assert state["isValid"] is False
    assert validate(s, state) == ["Colour: “blue” is not one of the options."]


def test_select_escapes_labels():
    html = render(spec("select", options=[{"label": "<script>x</script>", "value": "<v>"}]))
    assert "<script>" not in html
    assert '<option value="&lt;v&gt;">&lt;script&gt;x&lt;/script&gt;</option>' in html


# Checkbox -------------------------------------------------------------------------------
def test_checkbox_checked_when_posted():
    s = spec("checkbox", label="I agree")
    state = state_of(s, post(checkbox1="on", **{"checkbox1.__present": "1"}))
    assert state == {"value": True, "isChecked": True, "isValid": True}
    html = render(s, state=state)
    assert re.search(r'<input type="checkbox" value="on" checked', html)
    assert '<label class="kiln-label" for="checkbox1-input">I agree</label>' in html


def test_checkbox_unchecked_is_absent_from_the_post():
    s = spec("checkbox", default_value=True)
    state = state_of(s, post(**{"checkbox1.__present": "1"}))
    assert state["isChecked"] is False
    assert " checked" not in render(s, state=state)


def test_checkbox_not_posted_at_all_keeps_its_default():
    assert state_of(spec("checkbox", default_value=True))["isChecked"] is True
    assert state_of(spec("checkbox"))["isChecked"] is False


def test_checkbox_required():
    s = spec("checkbox", label="Terms", required=True)
    state = state_of(s, post(**{"checkbox1.__present": "1"}))
    assert state["isValid"] is False
    assert validate(s, state) == ["Terms is required."]


def test_checkbox_default_renders_checked():
    assert re.search(
        r"<input type=\"checkbox\"[^>]* checked", render(spec("checkbox", default_value=True))
    )


def test_disabled_checkbox_posts_no_marker_and_keeps_default():
    s = spec("checkbox", disabled=True, default_value=True)
    assert "__present" not in render(s)
    assert state_of(s, post(**{"checkbox1.__present": "1"}))["isChecked"] is True


# Button ---------------------------------------------------------------------------------
def test_button_pastes_click_attrs():
    s = spec("button", name="b1", text="Send")
    html = render(s, attrs=RenderAttrs(events={"click": CLICK}))
    assert (
        '<button type="button" class="kiln-btn kiln-btn-primary" data-button-type="button"' in html
    )
    assert CLICK in html
    assert ">Send</button>" in html


def test_button_without_handler_has_no_htmx():
    assert "hx-post" not in render(spec("button"))


def test_button_styles_and_disabled():
    html = render(spec("button", style="danger", disabled=True))
    assert "kiln-btn-danger" in html
    assert " disabled" in html


def test_button_text_is_escaped():
    html = render(spec("button", text="<script>x</script>"))
    assert "<script>" not in html


def test_reset_button_resets_in_the_browser():
    html = render(spec("button", button_type="reset"))
    assert 'type="button"' in html
    assert 'data-kiln-click="reset"' in html and "hx-on" not in html
    assert '"reset") resetForm(button)' in VIEWER_JS and "dataset.default" in VIEWER_JS


def test_submit_button_clicks_the_forms_submit():
    html = render(spec("button", button_type="submit"))
    assert 'data-kiln-click="submit"' in html
    assert '"submit") submitForm(button)' in VIEWER_JS and "kiln-form-submit" in VIEWER_JS


def test_button_state():
    assert state_of(spec("button", text="Go")) == {"text": "Go"}


# Form -----------------------------------------------------------------------------------
def _form():
    email = spec("input", name="email", label="Email", input_type="email", required=True)
    agree = spec("checkbox", name="agree")
    files = spec("filepicker", name="files1")
    colour = spec("select", name="colour", options=OPTIONS)
    box = spec("container", name="box", children=[colour])
    title = spec("text", name="title")
    return spec("form", name="form1", children=[email, agree, files, box, title])


def test_form_data_from_child_states():
    form = _form()
    data = post(email="ada@example.test", colour="r", **{"agree.__present": "1"})
    files = files_of("files1", upload("cv.pdf", 10))
    states = {c.name: state_of(c, data, files) for c in form.children if c.name != "box"}
    box = form.children[3]
    states["box"] = state_of(box, data, files, {"colour": state_of(box.children[0], data)})
    state = state_of(form, data, files, states)
    assert state["isValid"] is True
    assert set(state["data"]) == {"email", "agree", "files1", "colour"}
    assert state["data"]["email"] == "ada@example.test"
    assert state["data"]["agree"] is False
    assert state["data"]["colour"] == "r"
    assert [f.name for f in state["data"]["files1"]] == ["cv.pdf"]


def test_form_is_invalid_when_a_child_is():
    form = _form()
    data = post(email="nope")
    states = {c.name: state_of(c, data) for c in form.children}
    state = state_of(form, data, None, states)
    assert state["isValid"] is False
    assert state["data"]["email"] == "nope"


def test_form_renders_children_and_its_own_buttons():
    form = spec("form", title="Sign up", submit_label="Send", reset_label="Clear")
    html = render(
        form,
        children=['<div id="w-email">child</div>'],
        attrs=RenderAttrs(events={"submit": CLICK}),
    )
    assert "<form" not in html
    assert (
        'class="kiln-widget kiln-form" data-widget="form1" role="form" aria-label="Sign up"' in html
    )
    assert '<div id="w-email">child</div>' in html
    assert re.search(
        r'<button type="button" class="[^"]*kiln-form-submit" ' + re.escape(CLICK), html
    )
    assert ">Send</button>" in html
    assert ">Clear</button>" in html
    assert 'data-kiln-click="reset"' in html  # reset in the browser, by viewer.js


def test_form_reset_uses_the_runtime_handler_when_given():
    reset = mark_safe('hx-post="/reset"')
    html = render(spec("form"), attrs=RenderAttrs(events={"reset": reset}))
    assert 'hx-post="/reset"' in html
    assert "data-kiln-click" not in html


def test_form_without_reset():
    assert "kiln-form-reset" not in render(spec("form", show_reset=False))


def test_form_title_is_escaped():
    html = render(spec("form", title="<b>x</b>"))
    assert "<b>x</b>" not in html


# File picker ----------------------------------------------------------------------------
def test_filepicker_renders_input_with_limits():
    s = spec(
        "filepicker",
        label="Attachments",
        allowed_types=[".pdf", "image/*"],
        max_file_size_mb=2,
        max_files=3,
        multiple=True,
    )
    html = render(s)
    assert 'type="file"' in html
    assert 'name="filepicker1"' in html
    assert 'accept=".pdf,image/*"' in html
    assert " multiple" in html
    assert f'data-max-bytes="{2 * MB}"' in html
    assert 'data-max-files="3"' in html
    assert "kiln-file" in html and "hx-on" not in html
    assert 'matches("input.kiln-file")) checkFiles' in VIEWER_JS
    assert 'id="filepicker1-errors" role="alert"' in html


def test_filepicker_single_file_by_default():
    html = render(spec("filepicker"))
    assert " multiple" not in html
    assert 'data-max-files="1"' in html


def test_filepicker_state_round_trip():
    s = spec("filepicker", multiple=True, max_files=2)
    files = files_of("filepicker1", upload("a.pdf", 3), upload("b.png", 4, "image/png"))
    state = state_of(s, post(), files)
    assert state["isValid"] is True
    assert state["files"] == [
        FileContent("a.pdf", "application/pdf", b"xxx"),
        FileContent("b.png", "image/png", b"xxxx"),
    ]


def test_filepicker_several_files_with_the_default_limit_takes_several():
    # "Allow several files" with "Max files" left at 1: several, with no count limit.
    s = spec("filepicker", label="Files", multiple=True)
    html = render(s)
    assert " multiple" in html and 'data-max-files="0"' in html
    files = files_of("filepicker1", *(upload(f"{i}.pdf", 1) for i in range(4)))
    state = state_of(s, post(), files)
    assert state["isValid"] is True and len(state["files"]) == 4
    assert validate(s, state) == []


def test_filepicker_not_multiple_stays_one_file():
    s = spec("filepicker", label="CV", multiple=False, max_files=0)
    assert " multiple" not in render(s)
    files = files_of("filepicker1", upload("a.pdf", 1), upload("b.pdf", 1))
    assert validate(s, state_of(s, post(), files)) == ["CV: at most 1 file."]


def test_filepicker_state_can_be_read_again():
    s = spec("filepicker")
    files = files_of("filepicker1", upload("a.pdf", 3))
    first = state_of(s, post(), files)
    assert state_of(s, post(), files) == first
    assert first["files"][0].data == b"xxx"


def test_filepicker_too_many_files():
    s = spec("filepicker", label="Files", multiple=True, max_files=2)
    files = files_of("filepicker1", *(upload(f"{i}.pdf", 1) for i in range(3)))
    state = state_of(s, post(), files)
    assert state["isValid"] is False
    assert validate(s, state) == ["Files: at most 2 files."]


def test_filepicker_one_file_only():
    s = spec("filepicker", label="CV")
    files = files_of("filepicker1", upload("a.pdf", 1), upload("b.pdf", 1))
    assert validate(s, state_of(s, post(), files)) == ["CV: at most 1 file."]


def test_filepicker_too_big():
    s = spec("filepicker", label="CV", max_file_size_mb=5)
    files = files_of("filepicker1", upload("a.pdf", int(7.1 * MB)))
    assert validate(s, state_of(s, post(), files)) == [
        "CV: “a.pdf” is 7.1 MB, over the 5 MB limit."
    ]


def test_filepicker_just_over_the_limit_reads_as_over():
    s = spec("filepicker", label="CV", max_file_size_mb=5)
    files = files_of("filepicker1", upload("a.pdf", 5 * MB + 1))
    assert validate(s, state_of(s, post(), files)) == [
        "CV: “a.pdf” is 5.1 MB, over the 5 MB limit."
    ]


def test_filepicker_wrong_type_names_the_file():
    s = spec(
        "filepicker", label="CV", allowed_types=[".pdf", "image/*"], multiple=True, max_files=3
    )
    files = files_of(
        "filepicker1",
        upload("ok.pdf", 1),
        upload("photo.jpg", 1, "image/jpeg"),
        upload("evil.exe", 1, "application/octet-stream"),
    )
    assert validate(s, state_of(s, post(), files)) == [
        "CV: “evil.exe” is not an allowed file type (.pdf, image/*)."
    ]


def test_filepicker_allowed_types_as_text():
    s = spec("filepicker", allowed_types="pdf, text/plain")
    assert 'accept=".pdf,text/plain"' in render(s)


def test_filepicker_required():
    s = spec("filepicker", label="CV", required=True)
    assert validate(s, state_of(s)) == ["CV is required."]


def test_filepicker_file_name_is_escaped_in_messages_when_rendered():
    s = spec("filepicker", label="CV", allowed_types=[".pdf"])
    state = state_of(s, post(), files_of("filepicker1", upload("<script>.exe", 1)))
    html = render(s, state=state, errors=validate(s, state))
    assert "<script>" not in html
    assert "“&lt;script&gt;.exe”" in html


# Table ----------------------------------------------------------------------------------
ROWS = [{"id": i, "email": f"user{i:02}@example.test", "team": "ab"[i % 2]} for i in range(1, 58)]


def test_table_renders_rows_with_auto_columns_and_paging():
    s = spec("table", data=ROWS)
    html = render(s)
    for key in ("id", "email", "team"):
        assert f">{key}<span" in html
    assert "user01@example.test" in html
    assert "user10@example.test" in html
    assert "user11@example.test" not in html
    assert "1–10 of 57" in html
    assert "Page 1 of 6" in html


def test_table_state_defaults():
    state = state_of(spec("table", data=ROWS))
    assert state == {
        "data": ROWS,
        "selected_row": None,
        "selected_row_index": None,
        "search_text": "",
        "page": 1,
        "sort": "",
    }


def test_table_columns_chosen_and_labelled():
    s = spec("table", data=ROWS[:2], columns=["email", {"key": "team", "label": "Team"}])
    html = render(s)
    assert ">email<span" in html
    assert ">Team<span" in html
    assert ">id<span" not in html


def test_table_search_is_case_insensitive_over_all_cells():
    s = spec("table", data=ROWS)
    state = state_of(s, post(**{"table1.__search": "USER0"}))
    assert state["search_text"] == "USER0"
    html = render(s, state=state)
    assert "1–9 of 9" in html
    assert "user10@example.test" not in html
    assert 'value="USER0"' in html


def test_table_search_with_no_match():
    s = spec("table", data=ROWS)
    html = render(s, state=state_of(s, post(**{"table1.__search": "zzz"})))
    assert "No rows match “zzz”." in html
    assert "0 rows" in html


def test_table_empty():
    assert "No rows" in render(spec("table", data=[]))
    assert "No rows" in render(spec("table", data=None))


def test_table_sort_descending():
    s = spec("table", data=ROWS)
    state = state_of(s, post(**{"table1.__sort": "-id"}))
    assert state["sort"] == "-id"
    html = render(s, state=state)
    assert html.index("user57@") < html.index("user56@")
    assert 'aria-sort="descending"' in html


def test_table_sort_numbers_as_numbers():
    rows = [{"n": 10}, {"n": 9}, {"n": None}, {"n": "100"}]
    s = spec("table", data=rows, selectable=False)
    html = render(s, state=state_of(s, post(**{"table1.__sort": "n"})))
    cells = re.findall(r"<td>([^<]*)</td>", html)
    assert cells == ["9", "10", "100", ""]


def test_table_default_sort():
    s = spec("table", data=ROWS, default_sort="-email")
    assert state_of(s)["sort"] == "-email"
    assert render(s).index("user57@") < render(s).index("user56@")


def test_table_sort_buttons_cycle_and_carry_refresh():
    s = spec("table", data=ROWS[:3], default_sort="email")
    html = render(s, attrs=RenderAttrs(events={}, refresh=REFRESH))
    # Clicking the sorted column sorts it the other way; another column sorts ascending.
    assert f'name="table1.__sort" value="-email" {REFRESH}' in html
    assert f'name="table1.__sort" value="id" {REFRESH}' in html


def test_table_clicked_sort_button_wins_over_the_hidden_field():
    s = spec("table", data=ROWS)
    # htmx posts the form's hidden field first and the clicked button after it.
    data = post([("table1.__sort", "id"), ("table1.__sort", "-id")])
    assert state_of(s, data)["sort"] == "-id"


def test_table_paging():
    s = spec("table", data=ROWS)
    view = '["", ""]'
    data = post([("table1.__page", "1"), ("table1.__page", "3"), ("table1.__view", view)])
    state = state_of(s, data)
    assert state["page"] == 3
    html = render(s, state=state, attrs=RenderAttrs(events={}, refresh=REFRESH))
    assert "21–30 of 57" in html
    assert "user21@" in html and "user20@" not in html
    assert f'name="table1.__page" value="2" aria-label="Previous page" {REFRESH}' in html
    assert f'name="table1.__page" value="4" aria-label="Next page" {REFRESH}' in html


def test_table_last_page_and_clamping():
    s = spec("table", data=ROWS)
    state = state_of(s, post(**{"table1.__page": "99"}))
    assert state["page"] == 6
    html = render(s, state=state)
    assert "51–57 of 57" in html
    assert re.search(r'aria-label="Next page" disabled', html)


def test_table_new_search_starts_at_page_one():
    s = spec("table", data=ROWS)
    data = post(
        **{
            "table1.__page": "4",
            "table1.__search": "user",
            "table1.__sort": "",
            "table1.__view": '["", ""]',
        }
    )
    assert state_of(s, data)["page"] == 1


def test_table_page_size_zero_shows_everything():
    html = render(spec("table", data=ROWS, page_size=0))
    assert "1–57 of 57" in html
    assert "Page 1" not in html


def test_table_selection():
    s = spec("table", data=ROWS)
    state = state_of(s, post(**{"table1.__selected": "4"}))
    assert state["selected_row_index"] == 4
    assert state["selected_row"] == ROWS[4]
    html = render(s, state=state)
    assert '<tr class="is-selected"' in html
    assert re.search(r'name="table1.__selected" value="4" checked', html)


def test_table_selection_kept_on_another_page():
    s = spec("table", data=ROWS)
    state = state_of(s, post(**{"table1.__selected": "2", "table1.__page": "2"}))
    assert state["selected_row_index"] == 2
    html = render(s, state=state)
    assert '<input type="hidden" name="table1.__selected" value="2">' in html


def test_table_selection_out_of_range_is_none():
    s = spec("table", data=ROWS[:3])
    assert state_of(s, post(**{"table1.__selected": "7"}))["selected_row"] is None
    assert state_of(s, post(**{"table1.__selected": "x"}))["selected_row"] is None


def test_table_not_selectable():
    s = spec("table", data=ROWS, selectable=False)
    assert state_of(s, post(**{"table1.__selected": "1"}))["selected_row"] is None
    assert 'type="radio"' not in render(s)


def test_row_selection_triggers_row_selected_or_refresh():
    s = spec("table", data=ROWS[:2])
    selected = mark_safe('hx-post="/event" data-e="row_selected"')
    html = render(s, attrs=RenderAttrs(events={"row_selected": selected}, refresh=REFRESH))
    assert re.search(r'type="radio"[^>]*' + re.escape(selected), html)
    html = render(s, attrs=RenderAttrs(events={}, refresh=REFRESH))
    assert re.search(r'type="radio"[^>]*' + re.escape(REFRESH), html)


def test_table_search_box_refreshes_while_typing():
    html = render(spec("table", data=ROWS), attrs=RenderAttrs(events={}, refresh=REFRESH))
    search = re.search(r'<input[^>]*name="table1.__search"[^>]*>', html).group(0)
    assert 'hx-trigger="input changed delay:300ms' in search
    assert REFRESH in search


def test_table_not_searchable():
    assert "table1.__search" not in render(spec("table", data=ROWS, searchable=False))


def test_table_cells_are_escaped_and_structures_are_json():
    rows = [{"name": "<script>alert(1)</script>", "tags": ["a", "b"], "meta": {"k": 1}, "ok": True}]
    html = render(spec("table", data=rows))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "[&quot;a&quot;,&quot;b&quot;]" in html
    assert "{&quot;k&quot;:1}" in html
    assert "<td>true</td>" in html


def test_table_data_as_json_text():
    s = spec("table", data='[{"a": 1}]')
    assert state_of(s)["data"] == [{"a": 1}]


def test_table_data_of_plain_values():
    assert state_of(spec("table", data=[1, 2]))["data"] == [{"value": 1}, {"value": 2}]


def test_table_bad_json_is_a_property_problem():
    html = render(spec("table", data="[oops"))
    assert "kiln-binding-error" in html
    assert "No rows" in html


# Container and modal --------------------------------------------------------------------
def test_container_renders_children():
    html = render(spec("container", title="Box"), children=["<p>inside</p>"])
    assert "<p>inside</p>" in html
    assert "Box" in html


def test_container_gathers_children():
    child = spec("input", name="city")
    box = spec("container", name="box", children=[child])
    state = state_of(box, None, None, {"city": {"value": "Oslo", "text": "Oslo", "isValid": True}})
    assert state == {"data": {"city": "Oslo"}, "isValid": True}


def test_modal_is_a_closed_dialog_with_a_close_button():
    html = render(spec("modal", name="confirm", title="Are you sure?"), children=["<p>x</p>"])
    assert '<dialog class="kiln-modal" id="modal-confirm"' in html
    assert " open" not in html
    assert "Are you sure?" in html
    assert "<p>x</p>" in html
    assert 'class="kiln-modal-close"' in html and "hx-on" not in html
    assert 'closest(".kiln-modal-close")' in VIEWER_JS


# One renderer for many widgets ------------------------------------------------------------
def test_widgets_rendered_together_render_as_alone():
    renderer = Renderer()
    specs = [
        spec("input", "name_in", label="Name", required=True),
        spec("text", "note", text="Hello <there>", tooltip="Tip"),
        spec("checkbox", "agree", label="I agree"),
        spec("input", "email_in", placeholder="you@example.com"),
    ]
    for s in specs:
        alone = render(s, errors=["Required."] if s.name == "name_in" else ())
        together = get_type(s.type).render(
            s,
            state=None,
            errors=["Required."] if s.name == "name_in" else [],
            prop_errors={},
            children_html=[],
            attrs=RenderAttrs(events={}),
            renderer=renderer,
        )
        # Nothing of one widget (its errors, its label) shows in the next.
        assert together == alone


def test_refresh_attributes_are_rendered_when_read():
    calls = []

    def refresh():
        calls.append(1)
        return SafeString('hx-post="/refresh"')

    render(spec("text", text="Hi"), attrs=RenderAttrs(refresh=refresh))
    assert calls == []
    html = render(spec("table", data=[{"a": 1}]), attrs=RenderAttrs(refresh=refresh))
    assert 'hx-post="/refresh"' in html and calls == [1]
