"""The invitation email, sent through Kiln's own mail settings (EMAIL_*)."""

from __future__ import annotations

import smtplib

from django.core.mail import EmailMessage
from django.template.loader import render_to_string

from workspaces.models import Invitation


def send_invitation(invitation: Invitation, link: str) -> str | None:
    """Sends the invitation; returns why it could not be sent, or None when it was."""
    if not invitation.email:
        return "The user has no email address."
    context = {"invitation": invitation, "link": link}
    subject = " ".join(render_to_string("workspaces/email/invitation_subject.txt", context).split())
    body = render_to_string("workspaces/email/invitation.txt", context)
    message = EmailMessage(subject=subject, body=body, to=[invitation.email])
    try:
        message.send()
    except (OSError, smtplib.SMTPException) as error:
        return str(error) or type(error).__name__
    return None
