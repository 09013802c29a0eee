"""Inline images: files shown inside the HTML body, which refers to each by ``cid:``.

An image comes from the Inline images field (each file's Content-ID derived from its
name: ``logo.png`` is ``cid:logo.png``) or from an Attachment(s) item marked
``"inline": true`` (its own ``"cid"``, or one derived from its name). The images go in a
multipart/related part with the HTML body, which is what mail clients show in place;
a run stores them as files beside the message, as it does attachments
(datasources.plugins.smtp.stored), so their bytes are streamed when the run is sent.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage

import filetype

from core.filetypes import SNIFF_BYTES
from core.mail import FramedHtml, cid_references, with_data_urls
from core.text import as_bool
from datasources.errors import QUOTED, FieldError, quoted
from datasources.plugins.smtp.message import Attachment, FileResolver, file_items, read_attachments

FIELD = "inline_images"
LABEL = "Inline images"
#: What an error about one item of the Inline images field calls it.
NOUN = "Inline image"
#: What a Content-ID given by hand may hold: safe in a header and in a ``cid:`` URL
#: without escaping.
_GIVEN_CID = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
#: What a derived Content-ID keeps of a file name; every other run of characters is "-".
_NOT_CID = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class InlineImage:
    """One image of the HTML body: its Content-ID (without angle brackets) and file."""

    cid: str
    file: Attachment
    #: The field it came from: the one an error about it names.
    field: str = FIELD


def not_inline(value):
    """An Attachment(s) value without the items marked inline (they are images)."""
    if isinstance(value, str):
        value = file_items(value)
    if isinstance(value, list | tuple):
        return [item for item in value if not _marked_inline(item)]
    return [] if _marked_inline(value) else value


def _marked_inline(item) -> bool:
    return isinstance(item, dict) and as_bool(item.get("inline"), unknown=False)


def read_images(fields: dict, resolve_file: FileResolver | None) -> list[InlineImage]:
    """The inline images of ``fields``, each checked to be an image, with a Content-ID
    unique in the message. Raises ``FieldError`` naming the field an image came from."""
    images: list[InlineImage] = []
    taken: set[str] = set()
    given = [item for item in file_items(fields.get("attachments")) if _marked_inline(item)]
    for item, file in zip(given, _read("attachments", given, resolve_file), strict=True):
        cid = _given_cid(item.get("cid")) if item.get("cid") else ""
        if cid and cid in taken:
            raise FieldError("attachments", f"Two inline images have the Content-ID {quoted(cid)}.")
        cid = cid or _derived_cid(file.name, taken)
        images.append(_checked(InlineImage(cid, file, "attachments")))
        taken.add(cid)
    picked = _read_field(fields.get(FIELD))
    for file in _read(FIELD, picked, resolve_file):
        images.append(_checked(InlineImage(_derived_cid(file.name, taken), file)))
        taken.add(images[-1].cid)
    return images


def _read_field(value) -> list:
    """The items of the Inline images field; an error names that field."""
    try:
        return file_items(value, NOUN)
    except FieldError as exc:
        raise FieldError(FIELD, f"{LABEL}: {exc.message}") from None


def _read(name: str, items: list, resolve_file: FileResolver | None) -> list[Attachment]:
    """The files of ``items``, read as attachments are; an error names ``name``."""
    if not items:
        return []
    try:
        return read_attachments(
            items, resolve_file, "Attachment" if name == "attachments" else NOUN
        )
    except FieldError as exc:
        if name == "attachments":
            raise
        raise FieldError(name, f"{LABEL}: {exc.message}") from None


def _checked(image: InlineImage) -> InlineImage:
    """Only an image is shown in place, and only bytes that are one: anything else (a
    PDF, an SVG, which may hold script, HTML named photo.png) is an attachment."""
    sniffed = filetype.guess(image.file.data[:SNIFF_BYTES])
    if sniffed is None or not sniffed.mime.startswith("image/"):
        found = sniffed.mime if sniffed is not None else "no image format its bytes show"
        raise FieldError(
            image.field,
            f"{quoted(image.file.name)} is not an image ({found}): only images (PNG, JPEG, GIF, "
            "WebP) can be inline; attach other files as attachments.",
        )
    return image


def _given_cid(value) -> str:
    text = str(value).strip()
    if text.lower().startswith("cid:"):
        text = text[4:]
    text = text.strip().strip("<>")
    if not _GIVEN_CID.fullmatch(text):
        raise FieldError(
            "attachments",
            f"The inline image's cid {quoted(str(value))} may hold only letters, digits and "
            ". _ @ + - (at most 128).",
        )
    return text


def _derived_cid(name: str, taken: set[str]) -> str:
    """``name`` as a Content-ID: characters a URL or header would need to escape become
    "-"; a second ``logo.png`` is ``logo-2.png``."""
    base = _NOT_CID.sub("-", name).strip("-.")[:100] or "image"
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    cid, number = base, 1
    while cid in taken:
        number += 1
        cid = f"{stem}-{number}{dot}{extension}"
    return cid


#: The Content-IDs an HTML body refers to by ``cid:``, each once, in order.
references = cid_references


def check_references(html: str, images: Iterable[InlineImage], body_field: str) -> None:
    """Every ``cid:`` the HTML body refers to has its image; else a ``FieldError`` on the
    body naming the missing ones and the ones there are."""
    cids = [image.cid for image in images]
    missing = [cid for cid in references(html) if cid not in cids]
    if missing:
        raise FieldError(
            body_field,
            f"The HTML body refers to {_listed(missing)}, which no inline image has "
            f"(inline images: {_listed(cids) or 'none'}).",
        )


def _listed(cids: list[str], most: int = 5) -> str:
    """A few ``cid:`` references for an error, each cut to a line's worth: a body may
    hold thousands of them, as long as it likes."""
    shown = [f"cid:{c if len(c) <= QUOTED else c[:QUOTED] + '…'}" for c in cids[:most]]
    more = f" and {len(cids) - most:,} more" if len(cids) > most else ""
    return ", ".join(shown) + more


def attach(message: EmailMessage, images: list[InlineImage], *, placeholders: bool) -> list[str]:
    """Add ``images`` to the HTML part of ``message`` (making it multipart/related) and
    return the placeholder tokens standing for their bodies, in order (none unless
    ``placeholders``)."""
    html = message.get_body(preferencelist=("html",))
    if html is None:
        raise FieldError(
            images[0].field,
            f"{LABEL} are shown inside an HTML body: set Body type to HTML, or fill HTML "
            "body, or attach the files as attachments.",
        )
    token = secrets.token_hex(16)
    marks: list[str] = []
    for index, image in enumerate(images):
        maintype, subtype = image.file.content_type.split("/", 1)
        html.add_related(
            b"" if placeholders else image.file.data,
            maintype=maintype,
            subtype=subtype,
            cid=f"<{image.cid}>",
            disposition="inline",
            filename=image.file.name,
        )
        if placeholders:
            marks.append(f"kiln-inline-{index}-{token}")
            *_, part = html.iter_parts()
            part.set_payload(marks[-1])
    return marks


def preview_html(html: str, images: Iterable[InlineImage]) -> FramedHtml:
    """``html`` with the images in place as data: URLs (those within the frame's size
    limits), and which were shown: for the preview's frame only (which allows data:
    images), never for the message sent."""
    return with_data_urls(html, {i.cid: (i.file.content_type, i.file.data) for i in images})
