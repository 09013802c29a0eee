"""File picker: files to attach to an email, checked for count, size and type in the
browser (so a user learns at once) and again on the server (which is what counts)."""

from __future__ import annotations

import math
import mimetypes
from typing import Any

from core.filetypes import sniffed_type
from widgets.base import COMMON_PROPS, Prop, WidgetType, label_of
from widgets.values import format_number
from workspaces.files import FileContent

MB = 1024 * 1024


def allowed_list(raw: list) -> list[str]:
    """Allowed types, lower case; a bare extension ("pdf") gets its dot."""
    allowed = []
    for item in raw:
        text = str(item).strip().lower()
        if not text:
            continue
        if "/" not in text and not text.startswith("."):
            text = "." + text
        allowed.append(text)
    return allowed


def is_allowed(file: FileContent, allowed: list[str]) -> bool:
    if not allowed:
        return True
    name = file.name.lower()
    types = {(file.content_type or "").lower(), (mimetypes.guess_type(name)[0] or "").lower()}
    types.discard("")
    for pattern in allowed:
        if pattern.startswith("."):
            if name.endswith(pattern):
                return True
        elif pattern.endswith("/*"):
            if any(t.startswith(pattern[:-1]) for t in types):
                return True
        elif pattern in types:
            return True
    return False


def _contents(upload) -> bytes:
    # From the start: the runtime reads a page's state more than once per request.
    upload.seek(0)
    return upload.read()


def size_text(size: int) -> str:
    # Rounded up, so a file just over the limit never reads as "5.0 MB, over 5 MB".
    return f"{math.ceil(size * 10 / MB) / 10:.1f} MB"


class FilePickerWidget(WidgetType):
    type = "filepicker"
    label = "File picker"
    size = (4, 2)
    template = "widgets/filepicker.html"
    events = ("change",)
    value_key = "files"
    props = (
        Prop("label", "Label", "text", default="Files"),
        Prop(
            "allowed_types",
            "Allowed types",
            "list",
            default=[],
            help='Extensions or MIME types, e.g. [".pdf", "image/*"]; empty allows any.',
        ),
        Prop("max_file_size_mb", "Max file size (MB)", "number", default=5),
        Prop(
            "max_files",
            "Max files",
            "number",
            default=1,
            help="0 for no limit; with several files allowed, 1 also means no limit.",
        ),
        Prop("multiple", "Allow several files", "bool", default=False),
        Prop("required", "Required", "bool", default=False),
        Prop("disabled", "Disabled", "bool", default=False),
        *COMMON_PROPS,
    )

    def read_state(self, spec, data, files, child_states):
        props, _ = self.clean_props(spec.props)
        uploads = [] if files is None or props["disabled"] else files.getlist(spec.name)
        # The type the browser sent is ignored: the bytes and the name decide.
        picked = []
        for upload in uploads:
            if upload.name:
                data = _contents(upload)
                picked.append(FileContent(upload.name, sniffed_type(upload.name, data), data))
        state: dict[str, Any] = {"files": picked}
        state["isValid"] = not self.validate(spec, state)
        return state

    @staticmethod
    def limits(props: dict) -> tuple[int | None, int | None]:
        """(most files, most bytes per file); None is no limit."""
        max_files = int(props["max_files"]) if props["max_files"] else None
        if props["multiple"]:
            # "Allow several files" with the default limit of one would still allow one:
            # ticked, a limit under two means no count limit.
            if (max_files or 0) < 2:
                max_files = None
        elif (max_files or 0) <= 1:
            max_files = 1
        size = props["max_file_size_mb"]
        return max_files, (int(size * MB) if size else None)

    def validate(self, spec, state):
        props, _ = self.clean_props(spec.props)
        if not props["visible"] or props["disabled"]:
            return []
        label = label_of(spec, props)
        picked = list(state.get("files") or [])
        if not picked:
            return [f"{label} is required."] if props["required"] else []
        max_files, max_bytes = self.limits(props)
        allowed = allowed_list(props["allowed_types"])
        messages = []
        if max_files is not None and len(picked) > max_files:
            messages.append(f"{label}: at most {max_files} file{'' if max_files == 1 else 's'}.")
        for file in picked:
            name = getattr(file, "name", str(file))
            if max_bytes is not None and file.size > max_bytes:
                messages.append(
                    f"{label}: “{name}” is {size_text(file.size)}, over the "
                    f"{format_number(props['max_file_size_mb'])} MB limit."
                )
            if not is_allowed(file, allowed):
                messages.append(
                    f"{label}: “{name}” is not an allowed file type ({', '.join(allowed)})."
                )
        return messages

    def get_context(self, spec, props, state, attrs):
        max_files, max_bytes = self.limits(props)
        allowed = allowed_list(props["allowed_types"])
        return {
            "accept": ",".join(allowed),
            "allowed_text": ", ".join(allowed),
            "many": props["multiple"] or (max_files or 2) > 1,
            "max_files": max_files or 0,
            "max_bytes": max_bytes or 0,
            "max_mb": format_number(props["max_file_size_mb"] or 0),
            "label_text": label_of(spec, props),
        }

    def default_state(self, props: dict) -> dict | None:
        return {"files": []}
