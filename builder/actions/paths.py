"""Where a step is in a widget's action chains, in one syntax for the whole product.

``submit-0-on_success-1`` is the second action of the ``on_success`` chain of the
first action of the widget's ``submit`` event. A path that ends in an event or a
chain key names a list of actions (``submit``, ``submit-0-on_error``). The editor's
form fields are a path and a key (``submit-0-on_success-1-message``), and the viewer's
poller posts the path of the ``run_query`` whose run it waits for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The chains an action may hold, with their labels in the editor.
CHAINS: dict[str, str] = {"on_success": "On success", "on_error": "On error"}
SEPARATOR = "-"
_EVENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StepPath:
    """An event name, then indices alternating with chain keys."""

    event: str
    steps: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> StepPath:
        """The path written by :meth:`__str__`; ValueError for anything else."""
        event, *rest = str(text).split(SEPARATOR)
        if not _EVENT.match(event):
            raise ValueError(f"not a step path: {text!r}")
        steps: list[int | str] = []
        for position, part in enumerate(rest):
            # Even positions are indices, odd ones chain keys.
            if position % 2 == 0:
                if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
                    raise ValueError(f"not a step path: {text!r}")
                steps.append(int(part))
            elif part in CHAINS:
                steps.append(part)
            else:
                raise ValueError(f"not a step path: {text!r}")
        return cls(event, tuple(steps))

    def __str__(self) -> str:
        return SEPARATOR.join([self.event, *map(str, self.steps)])

    @property
    def is_action(self) -> bool:
        return bool(self.steps) and isinstance(self.steps[-1], int)

    def at(self, index: int) -> StepPath:
        """The action at ``index`` of the list this path names."""
        return StepPath(self.event, (*self.steps, index))

    def chain(self, key: str) -> StepPath:
        """The list ``key`` (``on_success``, ``on_error``) of the action this path names."""
        return StepPath(self.event, (*self.steps, key))

    def field(self, key: str) -> str:
        """The editor's form field for ``key`` of the action (or list) at this path."""
        return f"{self}{SEPARATOR}{key}"

    def find(self, events: Mapping) -> Any:
        """The action or list at this path in a widget's stored events, None if absent."""
        node: Any = events.get(self.event) if isinstance(events, Mapping) else None
        for step in self.steps:
            if isinstance(step, int):
                node = node[step] if isinstance(node, list) and step < len(node) else None
            else:
                node = node.get(step) if isinstance(node, Mapping) else None
            if node is None:
                return None
        return node
