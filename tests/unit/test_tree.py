"""The widget tree walk shared by the layout, the viewer and the editor."""

from __future__ import annotations

from builder.tree import Tree

PAGE = Tree(
    [
        ("title", None),
        ("form1", None),
        ("name", "form1"),
        ("box", "form1"),
        ("agree", "box"),
        ("send", "form1"),
        ("orphan", "gone"),
    ]
)


def test_parents_come_before_their_children():
    assert PAGE.parents_first() == ["title", "form1", "name", "box", "agree", "send", "orphan"]


def test_children_come_before_their_parents():
    assert PAGE.children_first() == ["title", "name", "agree", "box", "send", "form1", "orphan"]


def test_a_missing_parent_makes_a_top_level_node():
    assert PAGE.children(None) == ["title", "form1", "orphan"]


def test_subtree_and_ancestors():
    assert PAGE.subtree("form1") == ["form1", "name", "box", "agree", "send"]
    assert PAGE.ancestors("agree") == ["box", "form1"]


def test_nodes_in_a_cycle_are_kept_last_not_dropped():
    tree = Tree([("a", "b"), ("b", "a"), ("c", None)])
    assert tree.parents_first() == ["c", "a", "b"]
    assert tree.children_first() == ["c", "a", "b"]
    assert tree.ancestors("a") == ["b"]
