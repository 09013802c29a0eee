"""Workspaces, their members and invitations: creating and switching workspaces, the
members page (admins only), and the invitation link.

Every action is a plain form post that redirects with a message, so it works without
JavaScript; a refusal names what is wrong and changes nothing.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from workspaces import audit
from workspaces import members as service
from workspaces.access import get_membership
from workspaces.audit import Action
from workspaces.context_processors import SESSION_KEY
from workspaces.emails import send_invitation
from workspaces.forms import SignUpForm
from workspaces.members import MemberError
from workspaces.models import Invitation, Membership, Role

LINK_KEY = "kiln_invitation_link"
TOKEN_MAX = 100


def _members_url(slug: str) -> str:
    return reverse("workspaces:members", args=[slug])


# Creating and switching


@login_required
@require_http_methods(["GET", "POST"])
def workspace_create(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            workspace = service.create_workspace(request.POST.get("name", ""), request.user)
        except MemberError as e:
            error = e
        else:
            request.session[SESSION_KEY] = workspace.slug
            audit.record(workspace, Action.CREATED, "workspace", workspace.name, request=request)
            messages.success(request, f"Workspace {workspace.name} created; you are its admin.")
            return redirect("home")
    context = {"error": error, "name": request.POST.get("name", "")}
    return render(request, "workspaces/create.html", context, status=400 if error else 200)


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    membership = get_membership(request, request.POST.get("workspace", ""))
    request.session[SESSION_KEY] = membership.workspace.slug
    return redirect("home")


# The members page


@login_required
def members(request: HttpRequest, workspace: str) -> HttpResponse:
    mine = get_membership(request, workspace, Role.ADMIN)
    request.session[SESSION_KEY] = mine.workspace.slug
    context = {
        "workspace": mine.workspace,
        "membership": mine,
        "members": mine.workspace.memberships.select_related("user").order_by("user__username"),
        "invitations": [
            invitation
            for invitation in mine.workspace.invitations.filter(accepted_at__isnull=True)
            .select_related("user", "invited_by")
            .order_by("-created_at")
            if invitation.is_open
        ],
        "roles": Role.choices,
        "new_link": request.session.pop(LINK_KEY, None),
    }
    return render(request, "workspaces/members.html", context)


@login_required
@require_POST
def invite(request: HttpRequest, workspace: str) -> HttpResponse:
    mine = get_membership(request, workspace, Role.ADMIN)
    try:
        role = service.parse_role(request.POST.get("role", ""))
        invitation, token = service.invite(
            mine.workspace, request.POST.get("who", ""), role, request.user
        )
    except MemberError as e:
        messages.error(request, e.message)
        return redirect(_members_url(workspace))
    audit.record(
        mine.workspace,
        Action.INVITED,
        "member",
        invitation.invitee,
        request=request,
        detail={"role": role.value},
    )
    link = request.build_absolute_uri(reverse("workspaces:invitation", args=[token]))
    # Shown once on the next page, for the admin to copy: only the token's hash is kept.
    request.session[LINK_KEY] = link
    failure = send_invitation(invitation, link)
    if failure:
        messages.warning(
            request,
            f"Invitation for {invitation.invitee} created, but the email was not sent "
            f"({failure}). Copy the link below and send it yourself.",
        )
    else:
        messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect(_members_url(workspace))


def _member(request: HttpRequest, workspace: str, member: int) -> Membership:
    mine = get_membership(request, workspace, Role.ADMIN)
    found = mine.workspace.memberships.select_related("user", "workspace").filter(pk=member)
    membership = found.first()
    if membership is None:
        raise Http404("No such member")
    return membership


@login_required
@require_POST
def member_role(request: HttpRequest, workspace: str, member: int) -> HttpResponse:
    membership = _member(request, workspace, member)
    try:
        role = service.parse_role(request.POST.get("role", ""))
        service.change_role(membership, role)
    except MemberError as e:
        messages.error(request, e.message)
    else:
        name = membership.user.get_username()
        audit.record(
            membership.workspace,
            Action.ROLE_CHANGED,
            "member",
            name,
            request=request,
            detail={"role": role.value},
        )
        messages.success(request, f"{name} is now {role.label.lower()}.")
    if membership.user_id == request.user.pk and membership.role != Role.ADMIN:
        return redirect("home")  # no longer allowed on the members page
    return redirect(_members_url(workspace))


@login_required
@require_POST
def member_remove(request: HttpRequest, workspace: str, member: int) -> HttpResponse:
    membership = _member(request, workspace, member)
    name = membership.user.get_username()
    try:
        service.remove(membership)
    except MemberError as e:
        messages.error(request, e.message)
        return redirect(_members_url(workspace))
    audit.record(membership.workspace, Action.REMOVED, "member", name, request=request)
    messages.success(request, f"{name} was removed from {membership.workspace.name}.")
    if membership.user_id == request.user.pk:
        request.session.pop(SESSION_KEY, None)
        return redirect("home")
    return redirect(_members_url(workspace))


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, workspace: str, invitation: int) -> HttpResponse:
    mine = get_membership(request, workspace, Role.ADMIN)
    deleted, _ = mine.workspace.invitations.filter(pk=invitation, accepted_at__isnull=True).delete()
    if not deleted:
        raise Http404("No such invitation")
    audit.record(
        mine.workspace, Action.DELETED, "invitation", f"invitation {invitation}", request=request
    )
    messages.success(request, "Invitation revoked: its link no longer works.")
    return redirect(_members_url(workspace))


# The invitation link


def _invalid(request: HttpRequest, reason: str, status: int) -> HttpResponse:
    return render(request, "workspaces/invitation_invalid.html", {"reason": reason}, status=status)


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    found = Invitation.find(token) if len(token) <= TOKEN_MAX else None
    if found is None:
        return _invalid(request, "unknown", 404)
    if found.accepted_at is not None:
        return _invalid(request, "used", 410)
    if found.is_expired:
        return _invalid(request, "expired", 410)

    signin = AuthenticationForm(request, prefix="signin")
    signup = SignUpForm(prefix="signup", initial={"email": found.email})
    error = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        user = request.user if request.user.is_authenticated else None
        if action == "signin" and user is None:
            signin = AuthenticationForm(request, data=request.POST, prefix="signin")
            if signin.is_valid():
                user = signin.get_user()
                login(request, user)
        elif action == "signup" and user is None:
            signup = SignUpForm(request.POST, prefix="signup")
            if signup.is_valid():
                created = signup.save()
                user = authenticate(
                    request,
                    username=created.get_username(),
                    password=signup.cleaned_data["password"],
                )
                if user is not None:
                    login(request, user)
        if user is not None and user.is_authenticated:
            try:
                membership, new = service.accept(found, user)
            except MemberError as e:
                error = e.message
            else:
                request.session[SESSION_KEY] = membership.workspace.slug
                workspace, role = membership.workspace.name, membership.get_role_display()
                if new:
                    audit.record(
                        membership.workspace,
                        Action.JOINED,
                        "member",
                        user.get_username(),
                        request=request,
                        detail={"role": membership.role},
                    )
                    messages.success(request, f"You joined {workspace} as {role.lower()}.")
                else:
                    messages.info(request, f"You are already a member of {workspace} ({role}).")
                return redirect("home")
    context = {"invitation": found, "signin": signin, "signup": signup, "error": error}
    status = 400 if request.method == "POST" else 200
    return render(request, "workspaces/invitation.html", context, status=status)
