"""Dev mailbox pages: the list, one message, its HTML body, attachments, raw .eml, clear.

Mail shown here was written by anyone who can reach the SMTP port, so nothing from a
message is ever rendered with the site's origin: the HTML body is served sandboxed into
a sandboxed iframe, and attachments are only ever downloads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from core.filenames import safe_filename
from core.invites import read_calendar
from core.mail import SANDBOX_HEADERS
from devmailbox.models import MailboxMessage

PAGE_SIZE = 50
TABS = ("html", "text", "headers")
SUMMARY_HEADERS = ("From", "To", "Cc", "Reply-To", "Date")

# Only a browser that ignored Content-Disposition would render a download; if one does,
# it gets no script and no origin either.
DOWNLOAD_CSP = "sandbox; default-src 'none'"

# Characters Windows forbids in names, plus quotes and separators.
View = Callable[..., HttpResponse]


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def mailbox_enabled(view: View) -> View:
    """404 unless the dev mailbox is switched on and the user is staff.

    A 404 rather than a 403: mail in here can hold password-reset links and other
    secrets, and to everyone else the mailbox should simply not exist.
    Goes under ``@login_required`` so anonymous users are sent to sign in first.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.KILN_DEVMAILBOX or not request.user.is_staff:
            raise Http404("No dev mailbox here")
        return view(request, *args, **kwargs)

    return wrapper


@login_required
@mailbox_enabled
@require_GET
def message_list(request: HttpRequest) -> HttpResponse:
    # The raw bytes can be megabytes each; the list needs none of them.
    messages_qs = MailboxMessage.objects.defer("raw")
    page = Paginator(messages_qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "smtp_host": settings.KILN_DEVMAILBOX_HOST,
        "smtp_port": settings.KILN_DEVMAILBOX_PORT,
    }
    return render(request, "devmailbox/list.html", context)


@login_required
@mailbox_enabled
@require_GET
def detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(MailboxMessage, pk=pk)
    html_body = message.html_body
    tab = request.GET.get("tab")
    if tab not in TABS or (tab == "html" and html_body is None):
        tab = "html" if html_body is not None else "text"
    summary = [(name, value) for name in SUMMARY_HEADERS if (value := message.header_value(name))]
    calendar = message.mail.calendar
    context = {
        "message": message,
        "summary": summary,
        # Shown in the deployment's time zone, as the outbox shows an invite asked without one.
        "invite": read_calendar(calendar, settings.TIME_ZONE) if calendar is not None else None,
        "has_html": html_body is not None,
        "text_body": message.text_body,
        "tab": tab,
    }
    # Tab links swap only the body card when htmx is there; plain links work without it.
    template = "devmailbox/detail.html"
    if request.htmx and request.htmx.target == "message-body":
        template += "#message-body"
    return render(request, template, context)


@login_required
@mailbox_enabled
@require_GET
@xframe_options_sameorigin
def html(request: HttpRequest, pk: int) -> HttpResponse:
    """The HTML part, for the detail page's sandboxed iframe only."""
    message = get_object_or_404(MailboxMessage, pk=pk)
    body = message.mail.html_with_images  # inline (cid:) images as data: URLs
    if body is None:
        raise Http404("This message has no HTML part")
    # The header's charset wins over any <meta charset> in the body, which we re-encoded.
    return HttpResponse(body, content_type="text/html; charset=utf-8", headers=SANDBOX_HEADERS)


@login_required
@mailbox_enabled
@require_GET
def attachment(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    message = get_object_or_404(MailboxMessage, pk=pk)
    try:
        info, data = message.attachment(index)
    except IndexError:
        raise Http404("No such attachment") from None
    # Never the declared type: a text/html or image/svg+xml "attachment" must not run.
    filename = safe_filename(info["filename"], fallback=f"attachment-{index + 1}")
    return _download(data, filename, "application/octet-stream")


@login_required
@mailbox_enabled
@require_GET
def raw(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(MailboxMessage, pk=pk)
    return _download(message.raw_bytes, f"message-{message.pk}.eml", "message/rfc822")


@login_required
@mailbox_enabled
@require_POST
def clear(request: HtmxHttpRequest) -> HttpResponse:
    deleted, _ = MailboxMessage.objects.all().delete()
    messages.success(request, f"Deleted {deleted} message{pluralize(deleted)}.")
    url = reverse("devmailbox:list")
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _download(data: bytes, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=filename
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    return response
