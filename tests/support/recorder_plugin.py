"""A second datasource plugin, for tests only: it proves that generic code (the query
editor, the outbox, the viewer, the run API) works from the plugin contract alone.

``record`` sends nothing: it returns what it was asked to send as its data, and appends
it as one JSON line to the file named in its config, so that a test can read what a
Celery worker process did. The channel ``explode`` raises an exception no plugin
should, to test that the base class turns it into a clear error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import forms

from datasources.plugins.base import (
    ActionResult,
    ActionSpec,
    ConfigForm,
    ConnectionCheck,
    FieldSpec,
    Plugin,
)

KIND = "recorder"
PATH = "tests.support.recorder_plugin.RecorderPlugin"
EXPLODE = "explode"


@dataclass(frozen=True)
class RecorderSettings:
    label: str
    log_path: str = ""


class RecorderConfigForm(ConfigForm):
    label = forms.CharField(label="Label", max_length=100)
    log_path = forms.CharField(
        label="Log file", max_length=500, required=False, help_text="Where records go."
    )

    def stored(self) -> tuple[dict, str]:
        data = self.cleaned_data
        return {"label": data["label"], "log_path": data["log_path"]}, ""

    def settings(self) -> RecorderSettings:
        return RecorderSettings(**self.stored()[0])


RECORD = ActionSpec(
    "record",
    "Record",
    (
        FieldSpec(
            "channel",
            "Channel",
            help="Where the message is recorded.",
            placeholder="#general",
            required=True,
        ),
        FieldSpec(
            "message",
            "Message",
            kind="textarea",
            help="What is recorded.",
            placeholder="Hello << user.name >>",
        ),
    ),
)


class RecorderPlugin(Plugin):
    kind = KIND
    label = "Recorder"
    config_form = RecorderConfigForm
    actions = {"record": RECORD}

    def load_config(self, config: dict, secret: str) -> RecorderSettings:
        return RecorderSettings(config.get("label", ""), config.get("log_path", ""))

    def test_connection(self, settings: RecorderSettings) -> ConnectionCheck:
        return ConnectionCheck(True, f"Recorder “{settings.label}” is ready.")

    def config_summary(self, config: dict) -> str:
        return f"records as {config.get('label', '')}"

    def run_summary(self, action: str, fields: dict) -> dict[str, Any]:
        return {"channel": fields.get("channel", ""), "said": fields.get("message", "")}

    def execute(
        self, settings: RecorderSettings, action: str, fields: dict, context: Any = None
    ) -> ActionResult:
        if fields.get("channel") == EXPLODE:
            raise RuntimeError("the recorder exploded")
        record = {"channel": fields.get("channel"), "message": fields.get("message", "")}
        if settings.log_path:
            with Path(settings.log_path).open("a", encoding="utf-8") as log:
                log.write(json.dumps({"label": settings.label, **record}) + "\n")
        return ActionResult(data={"recorded": record, "by": settings.label})


def records(path: Path) -> list[dict]:
    """What the recorder wrote to ``path``, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
