"""A file in memory, as widgets, queries and plugins pass it around."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FileContent:
    """A file in memory: an attachment, an upload. Bindings see ``name``, ``type`` and
    ``size`` (the shape of Appsmith's file picker, without the data)."""

    name: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def type(self) -> str:
        return self.content_type

    @property
    def size(self) -> int:
        return len(self.data)

    def __str__(self) -> str:
        return self.name
