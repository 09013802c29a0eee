"""The app document's types: an app, its pages, widgets and queries, and the datasources
its queries use, as pydantic models. One shape for every copy of an app: the app file
(builder.document), a published version (AppVersion.document), an undo snapshot
(PageEdit.before/after) and the editor's clipboard.

The models check what a file can get wrong on its own (types, ranges, names, unknown
keys) with the messages docs/app-format.md shows; what needs the workspace or the rest
of the file (datasources, duplicates, parents) is checked by the import in
builder.document. Messages are raised as ``PydanticCustomError`` so that they read the
same as before the models existed, and :func:`error_path` turns pydantic's ``loc``
into the ``pages[0].widgets[2].name`` paths the errors name.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from builder.names import validate_identifier

KIND = "app"
VERSION = 1

# Column limits of the models, checked here so that a bad file gives a path, not a
# database error.
SMALL_INT_MAX = 32767
INT_MAX = 2147483647


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("kiln", message)


def _text(max_length: int):
    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _fail("must be a non-empty string")
        if len(value) > max_length:
            raise _fail(f"must be at most {max_length} characters")
        return value

    return BeforeValidator(check)


def _optional_text(max_length: int):
    """Text that may be empty (then the reader's own default applies)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _fail("must be a string")
        if len(value) > max_length:
            raise _fail(f"must be at most {max_length} characters")
        return value

    return BeforeValidator(check)


def _whole(minimum: int = 0, maximum: int = INT_MAX):
    def check(value: Any) -> int:
        # bool is an int in Python, but `true` for a width is a mistake.
        if type(value) is not int or not minimum <= value <= maximum:
            raise _fail(f"must be a whole number from {minimum} to {maximum}")
        return value

    return BeforeValidator(check)


#: Validation context for a copy Kiln stored itself (a published version, an undo
#: snapshot): its names were checked when they were saved, so a name that a later
#: release reserves must not make it unreadable.
STORED = {"stored": True}


def _identifier(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str):
        raise _fail("must be a string")
    if info.context and info.context.get("stored"):
        if not value:
            raise _fail("must be a non-empty string")
        return value
    try:
        validate_identifier(value)
    except ValidationError as exc:
        raise _fail(exc.messages[0]) from None
    return value


def _slug(value: Any) -> str:
    """A slug, or "" when none is given (one is then made from the name)."""
    if value is None or value == "":
        return ""
    _text(100).func(value)
    try:
        validate_slug(value)
    except ValidationError:
        raise _fail("must contain only letters, digits, - and _") from None
    return value


def _object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise _fail("must be an object")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail("must be true or false")
    return value


def _parent(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail("must be a widget's name or null")
    return value


Identifier = Annotated[str, BeforeValidator(_identifier)]
Slug = Annotated[str, BeforeValidator(_slug)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(_object)]
Flag = Annotated[bool, BeforeValidator(_bool)]


class _Entry(BaseModel):
    """An object of the file: required keys first, then no unknown key, as the format
    promises (a misspelt ``run_on_pageload`` is an error, not silently ignored)."""

    model_config = ConfigDict(extra="forbid")
    #: Keys allowed beyond the fields (a datasource's secrets are the plugin's choice and
    #: are checked by the import).
    check_unknown_keys: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        if isinstance(data, BaseModel):
            return data
        if not isinstance(data, dict):
            raise _fail("must be an object")
        for name, info in cls.model_fields.items():
            if info.is_required() and name not in data:
                raise PydanticCustomError("kiln_key", "is required", {"key": name})
        if cls.check_unknown_keys:
            known = ", ".join(cls.model_fields)
            for key in data:
                if key not in cls.model_fields:
                    raise PydanticCustomError(
                        "kiln_key", f"unknown key (expected: {known})", {"key": str(key)}
                    )
        return data


class WidgetDocument(_Entry):
    """A widget; ``parent`` is the name of the containing widget on the same page."""

    name: Identifier
    type: Annotated[str, _text(32)]
    parent: Annotated[str | None, BeforeValidator(_parent)] = None
    properties: JsonObject = Field(default_factory=dict)
    events: JsonObject = Field(default_factory=dict)
    x: Annotated[int, _whole(maximum=SMALL_INT_MAX)] = 0
    y: Annotated[int, _whole(maximum=INT_MAX)] = 0
    w: Annotated[int, _whole(maximum=SMALL_INT_MAX)] = 4
    h: Annotated[int, _whole(maximum=SMALL_INT_MAX)] = 1


class PageDocument(_Entry):
    """A page; ``position`` left out is the page's index in the file."""

    name: Annotated[str, _text(100)]
    slug: Slug = ""
    position: Annotated[int | None, _whole(maximum=INT_MAX)] = None
    widgets: list[WidgetDocument] = Field(default_factory=list)


class QueryDocument(_Entry):
    """A query. ``datasource`` is the datasource's name: a published version refers to
    its datasource by name, like a file does."""

    name: Identifier
    datasource: Annotated[str, _text(100)]
    action: Annotated[str, _text(50)]
    fields: JsonObject = Field(default_factory=dict)
    run_on_page_load: Flag = False
    confirm_before_run: Flag = False
    confirm_message: Annotated[str, _optional_text(200)] = ""
    timeout_seconds: Annotated[int, _whole(1, INT_MAX)] = 60
    #: When a run is sent (text with << >> bindings, read by queries/schedule.py).
    send_at: Annotated[str, _optional_text(200)] = ""
    #: A mail merge's list binding (docs/merge.md); blank: the query runs once.
    for_each: Annotated[str, _optional_text(2000)] = ""


class DatasourceDocument(_Entry):
    """A datasource's settings without secrets; a secret is named by an environment
    variable in an extra key (``"password": {"env": "SMTP_PASSWORD"}``), which the import
    checks against the plugin's settings form."""

    model_config = ConfigDict(extra="allow")
    check_unknown_keys: ClassVar[bool] = False

    name: Annotated[str, _text(100)]
    kind: Annotated[str, _text(30)]
    config: JsonObject = Field(default_factory=dict)


class AppInfo(_Entry):
    name: Annotated[str, _text(100)]
    slug: Slug = ""


def _kind(value: Any) -> str:
    if value != KIND:
        raise _fail(f'must be "{KIND}" (this is not a Kiln app file)')
    return value


def _version(value: Any) -> int:
    if type(value) is not int or value != VERSION:
        raise _fail(f"unsupported version {value!r}; expected {VERSION}")
    return value


class AppDocument(_Entry):
    """A whole app: what ``export_app`` writes, ``import_app`` reads and a published
    version stores."""

    kiln: Annotated[str, BeforeValidator(_kind)]
    version: Annotated[int, BeforeValidator(_version)]
    app: AppInfo
    datasources: list[DatasourceDocument] = Field(default_factory=list)
    pages: list[PageDocument] = Field(default_factory=list)
    queries: list[QueryDocument] = Field(default_factory=list)

    def query(self, name: str) -> QueryDocument | None:
        return next((query for query in self.queries if query.name == name), None)


def error_path(loc: tuple[int | str, ...], key: str | None = None) -> str:
    """``("pages", 0, "widgets", 2, "name")`` as ``pages[0].widgets[2].name``."""
    path = ""
    for part in (*loc, *([key] if key else [])):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "document"


def error_message(error: dict) -> str:
    """A pydantic error in the words of the format (docs/app-format.md)."""
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "list_type":
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be an object"
    return error["msg"]
