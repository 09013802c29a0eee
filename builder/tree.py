"""The one walk over a page's widget tree: widgets hold their parent by name (or id),
and every part of Kiln that needs the tree (layout order, the viewer's state reading,
a form's fields, the editor's suggestions and test values) reads it from here."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Tree(Generic[K]):
    """Nodes by key, in the order given, each with its parent's key (None for a top-level
    node). A parent that is not among the nodes makes a node top-level; nodes caught in a
    parent cycle are reachable from no root and are kept last by the walks, so that
    nothing is silently dropped."""

    def __init__(self, nodes: Iterable[tuple[K, K | None]]):
        pairs = list(nodes)
        self.keys: list[K] = [key for key, _ in pairs]
        known = set(self.keys)
        self.parent: dict[K, K | None] = {
            key: parent if parent in known else None for key, parent in pairs
        }
        self._children: dict[K | None, list[K]] = {}
        for key in self.keys:
            self._children.setdefault(self.parent[key], []).append(key)

    def children(self, key: K | None) -> list[K]:
        """The children of ``key`` in order; of None, the top-level nodes."""
        return self._children.get(key, [])

    def parents_first(self, *, unreachable: bool = True) -> list[K]:
        """Every node, each parent before its children (depth first, in order); with
        ``unreachable=False`` the nodes caught in a cycle are left out."""
        ordered: list[K] = []
        pending = list(reversed(self.children(None)))
        while pending:
            key = pending.pop()
            ordered.append(key)
            pending.extend(reversed(self.children(key)))
        return self._with_unreachable(ordered) if unreachable else ordered

    def children_first(self, *, unreachable: bool = True) -> list[K]:
        """Every node, each after its children (a container reads its children's state);
        with ``unreachable=False`` the nodes caught in a cycle are left out."""
        ordered: list[K] = []
        stack: list[tuple[K, bool]] = [(key, False) for key in reversed(self.children(None))]
        while stack:
            key, expanded = stack.pop()
            if expanded:
                ordered.append(key)
                continue
            stack.append((key, True))
            stack.extend((child, False) for child in reversed(self.children(key)))
        return self._with_unreachable(ordered) if unreachable else ordered

    def subtree(self, key: K) -> list[K]:
        """``key`` and everything under it, parents first."""
        found: list[K] = []
        pending = [key]
        seen: set[K] = set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            found.append(current)
            pending.extend(reversed(self.children(current)))
        return found

    def ancestors(self, key: K) -> list[K]:
        """The parents of ``key``, nearest first (stops at a cycle)."""
        found: list[K] = []
        current = self.parent.get(key)
        while current is not None and current not in found and current != key:
            found.append(current)
            current = self.parent.get(current)
        return found

    def _with_unreachable(self, ordered: list[K]) -> list[K]:
        seen = set(ordered)
        return ordered + [key for key in self.keys if key not in seen]
