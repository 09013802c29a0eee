"""The action vocabulary (builder.actions): step paths, normalising, references."""

from __future__ import annotations

import pytest

from builder.actions import ACTIONS, REGISTRY, ActionError, StepPath, normalise, walk

EVENTS = {
    "submit": [
        {
            "action": "run_query",
            "query": "send",
            "on_success": [
                {"action": "show_toast", "kind": "success", "message": "ok"},
                {"action": "reset_widget", "widget": "form1"},
            ],
            "on_error": [],
        },
    ]
}


@pytest.mark.parametrize(
    "text", ["submit", "submit-0", "submit-0-on_success", "click-2-on_error-10"]
)
def test_a_step_path_reads_what_it_writes(text):
    assert str(StepPath.parse(text)) == text


@pytest.mark.parametrize(
    "text", ["", "submit-", "submit-x", "submit-0-0", "submit-0-then-1", "a:b-0", "submit-01"]
)
def test_anything_else_is_not_a_step_path(text):
    with pytest.raises(ValueError):
        StepPath.parse(text)


def test_a_step_path_finds_its_action_and_names_its_fields():
    path = StepPath("submit").at(0).chain("on_success").at(1)
    assert str(path) == "submit-0-on_success-1" and path.is_action
    assert path.find(EVENTS) == {"action": "reset_widget", "widget": "form1"}
    assert path.field("widget") == "submit-0-on_success-1-widget"
    assert StepPath.parse("submit-0-on_success-5").find(EVENTS) is None
    assert not StepPath("submit").at(0).chain("on_error").is_action


def test_the_registry_is_the_menu():
    assert (
        list(ACTIONS)
        == list(REGISTRY)
        == [
            "run_query",
            "show_toast",
            "reset_widget",
            "set_value",
            "navigate",
            "open_modal",
            "close_modal",
            "download",
        ]
    )


def test_normalise_keeps_only_known_keys_and_names_where_it_fails():
    clean = normalise({"action": "show_toast", "kind": "loud", "extra": 1}, "click[0]")
    assert clean == {"action": "show_toast", "kind": "info", "message": ""}
    with pytest.raises(ActionError, match=r"click\[0\]\.on_error\[0\]: unknown action 'x'"):
        normalise({"action": "run_query", "on_error": [{"action": "x"}]}, "click[0]")
    with pytest.raises(ActionError, match=r"click\[0\]\.params must be an object"):
        normalise({"action": "navigate", "params": []}, "click[0]")


def test_walk_reaches_chained_actions_and_their_references():
    found = [
        (where, ref, name)
        for kind, action, where in walk(EVENTS["submit"], "submit")
        for _key, ref, name in kind.references(action)
    ]
    assert found == [("submit[0]", "query", "send"), ("submit[0].on_success[1]", "widget", "form1")]
