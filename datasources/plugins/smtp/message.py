"""Builds the email of a Send email action from its evaluated fields.

Every field is checked before anything is sent; an error names the field and the
value. Field names are those of the seed's Send Email table (docs/smtp.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.errors import HeaderParseError, NonASCIILocalPartDefect
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html.parser import HTMLParser

from django.conf import settings
from django.utils import timezone
from email_validator import EmailNotValidError, validate_email

from core.filenames import safe_filename as core_safe_filename
from core.filetypes import sniffed_type
from core.text import as_bool
from datasources.errors import FieldError, quoted
from datasources.plugins.smtp.custom_headers import CustomHeader, read_custom_headers
from datasources.plugins.smtp.headers import AddressHeader, TextHeader, header_safe
from workspaces.files import FileContent

LABELS = {
    "from": "From email",
    "from_name": "From name",
    "set_reply_to": "Set Reply To Email",
    "reply_to": "Reply to email",
    "to": "To email(s)",
    "cc": "CC email(s)",
    "bcc": "BCC email(s)",
    "subject": "Subject",
    "body": "Body",
    "body_type": "Body type",
    "html_body": "HTML body",
    "headers": "Custom headers",
    "attachments": "Attachment(s)",
}
_DATA_URL = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(;[^;,]*)*),(?P<payload>.*)$", re.S)
MAX_SUBJECT = 998
#: A display name is written as one encoded word, which must fit a line of 998 characters.
MAX_DISPLAY_NAME_BYTES = 600


Attachment = FileContent


@dataclass
class Email:
    """A checked message, ready for an SMTP transaction."""

    message: EmailMessage
    sender: str
    recipients: list[str]
    smtputf8: bool
    attachments: list[Attachment] = field(default_factory=list)
    #: Built with ``placeholders``: the text standing in the message for each
    #: attachment's body, in order (datasources.plugins.smtp.stored fills them in).
    placeholders: list[str] = field(default_factory=list)
    #: The custom headers as checked, in the message too: the preview lists them.
    custom_headers: list[CustomHeader] = field(default_factory=list)

    def as_bytes(self) -> bytes:
        chosen = policy.SMTPUTF8 if self.smtputf8 else policy.SMTP
        return self.message.as_bytes(policy=chosen)


#: Turns a Kiln file reference (``{"id": ...}``) into an Attachment, within the
#: workspace of the run; raises LookupError when there is no such file.
FileResolver = Callable[[object], Attachment]


def _label(name: str) -> str:
    return LABELS.get(name, name)


def field_text(name: str, value, label: str = "") -> str:
    """A text field's value ("" when unset); a list or an object is a FieldError naming
    the field by ``label`` (by default its label here)."""
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        raise FieldError(name, f"{label or _label(name)} must be text, not {type(value).__name__}.")
    return str(value)


def _header_safe(name: str, value: str) -> str:
    """``value`` if written as one header line it stays one line; else a FieldError."""
    return header_safe(name, _label(name), value)


def _address_items(name: str, value) -> list:
    """A field's raw items: a comma-separated string is one item, a list many."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise FieldError(
        name, f"{_label(name)} must be text or a list of addresses, not {type(value).__name__}."
    )


def count_addresses(text: str) -> int:
    """How many addresses ``text`` holds at most: its commas outside quotes and angle
    brackets, plus one. One linear pass; the email parser is far slower, so this count is
    what caps a field before it is parsed."""
    text = text.strip().strip(",")
    if not any(char in text for char in '"<\\'):
        commas = text.count(",")
    else:
        commas, quoted, angle, escaped = 0, False, False, False
        for char in text:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = not quoted
            elif not quoted and char == "<":
                angle = True
            elif not quoted and char == ">":
                angle = False
            elif char == "," and not quoted and not angle:
                commas += 1
    return commas + (1 if text.strip() else 0)


def check_recipient_count(fields: dict, names: tuple[str, ...] = ("to", "cc", "bcc")) -> None:
    """Refuse more than ``KILN_SMTP_MAX_RECIPIENTS`` addresses in ``names`` together,
    counted before any is parsed; the error names the field that went over."""
    cap = settings.KILN_SMTP_MAX_RECIPIENTS
    where = "To, CC and BCC" if len(names) > 1 else _label(names[0])
    total = 0
    for name in names:
        items = _address_items(name, fields.get(name))
        if len(items) > cap:
            raise FieldError(
                name, f"{_label(name)} has {len(items):,} items, over the limit of {cap:,}."
            )
        total += sum(count_addresses(item) for item in items if isinstance(item, str))
        if total > cap:
            raise FieldError(
                name, f"{_label(name)}: {total:,} recipients in {where}, over the limit of {cap:,}."
            )


def parse_addresses(name: str, value, *, required: bool = False, single: bool = False):
    """A field's addresses: a comma-separated string or a list of strings."""
    items = _address_items(name, value)
    if not single:
        check_recipient_count({name: value}, (name,))
    addresses: list[Address] = []
    for item in items:
        if not isinstance(item, str):
            raise FieldError(name, f"{_label(name)} has a value that is not text: {quoted(item)}")
        _header_safe(name, item)
        if single and (many := count_addresses(item)) > 1:
            raise FieldError(name, f"{_label(name)} takes one address, not {many}.")
        text = item.strip().strip(",").strip()
        if not text:
            continue
        for parsed in _parse_item(name, item, text):
            addresses.append(_checked_address(name, parsed, item))
    if required and not addresses:
        raise FieldError(name, f"{_label(name)} is required.")
    if single and len(addresses) > 1:
        raise FieldError(name, f"{_label(name)} takes one address, not {len(addresses)}.")
    return addresses


def _parse_item(name: str, item: str, text: str) -> tuple[Address, ...]:
    try:
        header = policy.default.header_factory("To", text)
        # A local part in UTF-8 (RFC 6531) is no defect for Kiln: validate_email checks it,
        # and the message then goes with SMTPUTF8 (see ``_needs_smtputf8``).
        defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
        parsed_ok = not defects and header.addresses
    except (HeaderParseError, IndexError, ValueError):
        parsed_ok = False
    if not parsed_ok:
        raise FieldError(name, f"{_label(name)} has an invalid address: {quoted(item)}")
    for parsed in header.addresses:
        # The parser decodes encoded words; what it made must still be one line.
        _header_safe(name, parsed.display_name)
        _header_safe(name, parsed.addr_spec)
    return header.addresses


#: Special-use names (RFC 6761, 6762) that email-validator refuses but mail servers
#: deliver: root@localhost to a local Exim or Postfix (Debian's default configuration
#: takes nothing else), user@corp.local to an internal Exchange. Their addresses are
#: checked as if under .test, which it allows; .invalid, .onion and .arpa stay refused.
_INTERNAL_DOMAINS = ("localhost", "local")
_STAND_IN = ".test"


def _validated(spec: str) -> tuple[str, str, str]:
    """The local part, the domain (IDNA) and the normalized address of ``spec``; raises
    EmailNotValidError. Internal apps mail internal domains: only syntax is checked, and
    the .test domain is allowed for the dev mailbox and tests."""
    domain = spec.rpartition("@")[2].lower().rstrip(".")
    internal = any(domain == d or domain.endswith(f".{d}") for d in _INTERNAL_DOMAINS)
    valid = validate_email(
        spec + _STAND_IN if internal else spec,
        check_deliverability=False,
        allow_smtputf8=True,
        globally_deliverable=False,
        test_environment=True,
    )
    ascii_domain = valid.ascii_domain or valid.domain
    normalized = valid.normalized
    if internal:
        ascii_domain = ascii_domain.removesuffix(_STAND_IN)
        normalized = normalized.removesuffix(_STAND_IN)
    return valid.local_part, ascii_domain, normalized


def _checked_address(name: str, parsed: Address, original: str) -> Address:
    spec = parsed.addr_spec
    try:
        local_part, domain, normalized = _validated(spec)
    except EmailNotValidError as exc:
        raise FieldError(
            name, f"{_label(name)} has an invalid address {quoted(spec)}: {exc}"
        ) from None
    display = display_name(parsed.display_name, name)
    if "@" in display and display.strip().strip('"').lower() != normalized.lower():
        # "a@b.com" <evil@x.com> reads as a@b.com but goes to evil@x.com.
        raise FieldError(
            name,
            f"{_label(name)} has a name that looks like another address: {quoted(original)} "
            f"would go to {normalized}, not {display}.",
        )
    return Address(display_name=display, username=local_part, domain=domain)


def display_name(text: str, name: str = "from_name") -> str:
    """A display name with its spaces and tabs run together (a reader's parser does the
    same to an encoded name: docs/smtp.md, Encoding of headers), refused when too long
    to be written as the one encoded word a name is written as."""
    text = re.sub("[ \t]+", " ", text).strip(" \t")
    if len(text.encode("utf-8")) > MAX_DISPLAY_NAME_BYTES:
        raise FieldError(
            name,
            f"{_label(name)} has a display name of {len(text.encode('utf-8')):,} bytes, "
            f"over the limit of {MAX_DISPLAY_NAME_BYTES}: {quoted(text, 40)}",
        )
    return text


def _needs_smtputf8(addresses: list[Address]) -> bool:
    return any(not a.username.isascii() for a in addresses)


class _TextOfHtml(HTMLParser):
    _BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def text_of_html(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    return parser.text()


def safe_filename(name: str, index: int) -> str:
    """An attachment's name: refused if it would break the header it is written in,
    else made safe as any offered file name is."""
    _header_safe("attachments", name)
    return core_safe_filename(name, f"attachment-{index}")


def _decode_data_url(name: str, data: str, noun: str = "Attachment") -> bytes:
    # The type the data URL declares is ignored: the bytes and the name decide.
    match = _DATA_URL.match(data)
    if not match:
        raise FieldError(
            "attachments",
            f"{noun} {quoted(name)}: its data is not a data URL (data:<type>;base64,...).",
        )
    payload = match["payload"]
    if ";base64" in match["params"].lower():
        try:
            content = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise FieldError(
                "attachments", f"{noun} {quoted(name)}: its data is not valid base64."
            ) from None
    else:
        content = urllib.parse.unquote_to_bytes(payload)
    return content


def _data_url_name(data_url: str, index: int) -> str:
    """A name for a data URL typed without one, from the type it declares: a PNG is
    ``image-1.png``, a PDF ``attachment-1.pdf`` (the bytes still decide the content type)."""
    declared = (_DATA_URL.match(data_url) or {"type": ""})["type"].strip().lower()
    extension = mimetypes.guess_extension(declared) or ".bin"
    stem = "image" if declared.startswith("image/") else "attachment"
    return f"{stem}-{index}{extension}"


def _accepted(noun: str, value: str) -> str:
    """The error for text that is no file: what the field accepts instead."""
    return (
        f"{noun} {quoted(value)} is not a file. Give a binding to a file picker's files "
        "(<< files1.files >>), a data URL (data:image/png;base64,...), a workspace file "
        '({"id": ...}), or a JSON list of {"name": ..., "data": "data:..."} items.'
    )


def file_items(value, noun: str = "Attachment") -> list:
    """The items of a files field (Attachment(s), Inline images). Besides a list or one
    item, a value typed into the field is text: a data URL, or JSON text of one item or
    a list of them. Any other text is refused (a path on the server is never read)."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        value = _typed_files(value, noun)
    return list(value) if isinstance(value, list | tuple) else [value]


def _typed_files(text: str, noun: str):
    stripped = text.strip()
    if stripped.lower().startswith("data:"):
        return [stripped]
    if stripped.startswith(("[", "{")):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise FieldError(
                "attachments", f"{noun}: the JSON text is not valid JSON ({exc.msg})."
            ) from None
    if not stripped:
        return []
    raise FieldError("attachments", _accepted(noun, stripped))


def read_attachments(
    value, resolve_file: FileResolver | None, noun: str = "Attachment"
) -> list[Attachment]:
    """Attachments from a file picker's list (Appsmith's ``{name, type, size, data}``),
    Kiln file references (``{"id": ...}``), uploaded file objects, or data URLs and JSON
    text typed into the field (``file_items``). Each one's content type is derived from
    its bytes and name (core.filetypes), never the declared one. ``noun`` is what an
    error calls one item ("Inline image" in the Inline images field)."""
    items = file_items(value, noun)
    if not items:
        return []
    attachments: list[Attachment] = []
    for index, item in enumerate(items, start=1):
        attachments.append(_read_attachment(item, index, resolve_file, noun))
    total = sum(len(a.data) for a in attachments)
    limit = settings.KILN_SMTP_MAX_ATTACHMENT_BYTES
    if total > limit:
        raise FieldError(
            "attachments",
            f"{noun}s total {total:,} bytes, over the limit of {limit:,} bytes "
            "(KILN_SMTP_MAX_ATTACHMENT_BYTES). Through the run API, send files as "
            "multipart/form-data rather than data URLs in JSON (docs/api.md).",
        )
    return attachments


def _read_attachment(item, index: int, resolve_file: FileResolver | None, noun: str) -> Attachment:
    if isinstance(item, FileContent):
        name = safe_filename(item.name, index)
        return Attachment(name, sniffed_type(name, item.data), item.data)
    if isinstance(item, dict) and "data" in item:
        name = safe_filename(str(item.get("name") or ""), index)
        data = item["data"]
        if isinstance(data, bytes):
            content = data
        elif isinstance(data, str):
            content = _decode_data_url(name, data, noun)
        else:
            raise FieldError("attachments", f"{noun} {quoted(name)}: its data is not text.")
        return Attachment(name, sniffed_type(name, content), content)
    if isinstance(item, dict) and "id" in item:
        if resolve_file is None:
            raise FieldError("attachments", f"{noun} #{index}: no workspace to read it from.")
        try:
            attachment = resolve_file(item["id"])
        except LookupError:
            raise FieldError(
                "attachments",
                f"{noun} #{index}: there is no file with id {quoted(item['id'])} in this "
                "workspace.",
            ) from None
        name = safe_filename(attachment.name, index)
        return Attachment(name, sniffed_type(name, attachment.data), attachment.data)
    if hasattr(item, "read") and hasattr(item, "name"):
        name = safe_filename(str(item.name or ""), index)
        if hasattr(item, "seek"):
            item.seek(0)
        content = item.read()
        return Attachment(name, sniffed_type(name, content), content)
    if isinstance(item, str) and item.strip().lower().startswith("data:"):
        name = _data_url_name(item.strip(), index)
        content = _decode_data_url(name, item.strip(), noun)
        return Attachment(name, sniffed_type(name, content), content)
    if isinstance(item, str):
        raise FieldError("attachments", _accepted(noun, item))
    raise FieldError("attachments", f"{noun} #{index} is not a file object: {type(item).__name__}.")


@dataclass(frozen=True)
class Bodies:
    """The text body and, when there is one, the HTML body of a message."""

    text: str
    html: str | None

    def set_on(self, message: EmailMessage) -> None:
        message.set_content(self.text, cte="quoted-printable")
        if self.html is not None:
            message.add_alternative(self.html, subtype="html", cte="quoted-printable")


def _body_type(fields: dict) -> str:
    body_type = (field_text("body_type", fields.get("body_type")) or "text").lower()
    if body_type in ("text/html", "html"):
        return "html"
    if body_type in ("text/plain", "text", "plain"):
        return "text"
    raise FieldError("body_type", f"Body type must be text or html, not {quoted(body_type)}.")


def read_bodies(fields: dict) -> Bodies:
    """The bodies from Body, Body type and HTML body (docs/smtp.md, HTML body): an HTML
    body goes beside the text of Body; without one, an HTML Body's text part is derived
    from it. An HTML body with Body type HTML would leave no text part to write, so it is
    refused rather than one of the two silently dropped."""
    body = field_text("body", fields.get("body"))
    body_type = _body_type(fields)
    html_body = field_text("html_body", fields.get("html_body"))
    if html_body.strip():
        if body_type == "html":
            raise FieldError(
                "html_body",
                "HTML body is set while Body type is HTML: set Body type to Text to send "
                "Body as the text part beside the HTML body, or leave HTML body empty.",
            )
        return Bodies(text=body if body.strip() else text_of_html(html_body), html=html_body)
    if body_type == "html":
        return Bodies(text=text_of_html(body), html=body)
    return Bodies(text=body, html=None)


def build_email(
    fields: dict, resolve_file: FileResolver | None = None, *, placeholders: bool = False
) -> Email:
    """Check every field and build the message. Raises ``FieldError`` naming the field.

    With ``placeholders``, each attachment's body in the message is a random token
    instead of its base64 text (``Email.placeholders``): the form stored with a run, so
    that a large file is encoded once, while it is sent, in pieces."""
    # Counted first: a field of 100,000 addresses is refused before the slow parser sees it.
    check_recipient_count(fields)
    if as_bool(fields.get("set_reply_to"), unknown=False):
        check_recipient_count(fields, ("reply_to",))
    senders = parse_addresses("from", fields.get("from"), required=True, single=True)
    sender = senders[0]
    # Measured (display_name) before it is scanned: a long name's error quotes a part.
    from_name = _header_safe(
        "from_name", display_name(field_text("from_name", fields.get("from_name")))
    )
    if from_name:
        sender = Address(display_name=from_name, username=sender.username, domain=sender.domain)
    reply_to = []
    if as_bool(fields.get("set_reply_to"), unknown=False):
        reply_to = parse_addresses("reply_to", fields.get("reply_to"), required=True)
    to = parse_addresses("to", fields.get("to"), required=True)
    cc = parse_addresses("cc", fields.get("cc"))
    bcc = parse_addresses("bcc", fields.get("bcc"))
    everyone = to + cc + bcc
    cap = settings.KILN_SMTP_MAX_RECIPIENTS
    if len(everyone) > cap:
        raise FieldError(
            "to", f"{len(everyone):,} recipients in To, CC and BCC, over the limit of {cap:,}."
        )
    subject = field_text("subject", fields.get("subject"))
    if len(subject) > MAX_SUBJECT:
        raise FieldError("subject", f"Subject is {len(subject):,} characters, over {MAX_SUBJECT}.")
    _header_safe("subject", subject)
    bodies = read_bodies(fields)
    custom_headers = read_custom_headers(fields.get("headers"))
    attachments = read_attachments(fields.get("attachments"), resolve_file)

    message = EmailMessage()
    message["From"] = AddressHeader("From", [sender])
    message["To"] = AddressHeader("To", to)
    if cc:
        message["Cc"] = AddressHeader("Cc", cc)
    if reply_to:
        message["Reply-To"] = AddressHeader("Reply-To", reply_to)
    message["Subject"] = TextHeader("Subject", subject)
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = make_msgid(domain=sender.domain.encode("idna").decode("ascii"))
    for header in custom_headers:
        message[header.name] = TextHeader(header.name, header.value)
    bodies.set_on(message)
    token = secrets.token_hex(16)
    marks = []
    for index, attachment in enumerate(attachments):
        maintype, subtype = attachment.content_type.split("/", 1)
        data = b"" if placeholders else attachment.data
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=attachment.name)
        if placeholders:
            # The part keeps its headers (type, name, base64); only its body is a token.
            marks.append(f"kiln-attachment-{index}-{token}")
            *_, part = message.iter_attachments()
            part.set_payload(marks[-1])
    # BCC goes in the envelope only, never in a header.
    return Email(
        message=message,
        sender=sender.addr_spec,
        recipients=list(dict.fromkeys(a.addr_spec for a in everyone)),
        # A header with a UTF-8 local part (Reply-To too) needs SMTPUTF8 as the envelope does.
        smtputf8=_needs_smtputf8([sender, *everyone, *reply_to]),
        attachments=attachments,
        placeholders=marks,
        custom_headers=custom_headers,
    )
