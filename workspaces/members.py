"""What admins do to a workspace's members, and what accepting an invitation does.

Every refusal is a ``MemberError`` naming the field at fault, so the views show it as it
is. The last admin of a workspace can be neither demoted nor removed: a workspace with no
admin could never get one again.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from core.errors import KilnError
from workspaces.models import Invitation, Membership, Role, Workspace

NAME_MAX = 100  # Workspace.name
LAST_ADMIN = "A workspace needs at least one admin: make another member an admin first."


class MemberError(KilnError):
    pass


def parse_role(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise MemberError(field, f"Choose a role: {choices}.") from None


def create_workspace(name: str, user) -> Workspace:
    """A new workspace, with ``user`` as its admin."""
    name = name.strip()
    if not name:
        raise MemberError("name", "Give the workspace a name.")
    if len(name) > NAME_MAX:
        raise MemberError("name", f"The workspace name can be at most {NAME_MAX} characters.")
    if any(not char.isprintable() for char in name):
        # The name goes into email subjects: no line breaks or control characters.
        raise MemberError("name", "The workspace name cannot contain control characters.")
    with transaction.atomic():
        workspace = Workspace.objects.create(name=name)
        workspace.add_member(user, Role.ADMIN)
    return workspace


def invite(workspace: Workspace, who: str, role: Role, invited_by) -> tuple[Invitation, str]:
    """An invitation for ``who``, a username or an email address, and its token."""
    who = who.strip()
    if not who:
        raise MemberError("who", "Enter the username or the email address of the person.")
    users = get_user_model().objects
    user = users.filter(username=who).first()
    if user is not None:
        if workspace.memberships.filter(user=user).exists():
            raise MemberError("who", f"{who} is already a member of {workspace.name}.")
        # Invited by name: the invitation is that account's, nobody else may accept it.
        return Invitation.start(workspace, role, invited_by, user=user, email=user.email)
    if "@" not in who:
        raise MemberError("who", f"There is no user named {who!r}; invite them by email.")
    try:
        validate_email(who)
    except ValidationError:
        raise MemberError("who", f"{who!r} is not a valid email address.") from None
    if workspace.memberships.filter(user__email__iexact=who).exists():
        raise MemberError("who", f"{who} is already a member of {workspace.name}.")
    return Invitation.start(workspace, role, invited_by, email=who)


def _admins(workspace: Workspace):
    # Locks the workspace's admin rows, so two admins demoting each other at once cannot
    # both pass the check (on databases that lock rows; SQLite locks the whole file).
    return Membership.objects.select_for_update().filter(workspace=workspace, role=Role.ADMIN)


def change_role(membership: Membership, role: Role) -> Membership:
    with transaction.atomic():
        if (
            membership.role == Role.ADMIN
            and role != Role.ADMIN
            and _admins(membership.workspace).count() <= 1
        ):
            raise MemberError("role", LAST_ADMIN)
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def remove(membership: Membership) -> None:
    with transaction.atomic():
        if membership.role == Role.ADMIN and _admins(membership.workspace).count() <= 1:
            raise MemberError("member", LAST_ADMIN)
        membership.delete()


def accept(invitation: Invitation, user) -> tuple[Membership, bool]:
    """Makes ``user`` a member with the invitation's role; returns the membership and
    whether it is new (an existing member keeps the role they have)."""
    with transaction.atomic():
        # The conditional update claims the invitation: of two accepts at once, one wins.
        claimed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, expires_at__gt=timezone.now()
        ).update(accepted_at=timezone.now(), accepted_by=user)
        if not claimed:
            raise MemberError("token", "This invitation has already been used or has expired.")
        invitee = invitation.user
        if invitee is not None and invitee.pk != user.pk:
            raise MemberError(
                "token",
                f"This invitation is for {invitee.get_username()}: "
                "sign in as that user to accept it.",
            )
        existing = invitation.workspace.memberships.filter(user=user).first()
        if existing is not None:
            return existing, False
        membership = Membership.objects.create(
            workspace=invitation.workspace, user=user, role=invitation.role
        )
    return membership, True
