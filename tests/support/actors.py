"""Named actors for tests: an owner, a teammate (editor), a viewer and an outsider."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from workspaces.models import Role, Workspace


@dataclass
class Team:
    workspace: Workspace
    owner: object
    teammate: object
    viewer: object
    outsider: object
    other_workspace: Workspace


def make_team() -> Team:
    users = get_user_model().objects
    owner = users.create_user("owner", "owner@kiln.test", "owner-pass-1")
    teammate = users.create_user("teammate", "teammate@kiln.test", "teammate-pass-1")
    viewer = users.create_user("viewer", "viewer@kiln.test", "viewer-pass-1")
    outsider = users.create_user("outsider", "outsider@kiln.test", "outsider-pass-1")
    workspace = Workspace.objects.create(name="Acme")
    workspace.add_member(owner, Role.ADMIN)
    workspace.add_member(teammate, Role.EDITOR)
    workspace.add_member(viewer, Role.VIEWER)
    other = Workspace.objects.create(name="Other")
    other.add_member(outsider, Role.ADMIN)
    return Team(workspace, owner, teammate, viewer, outsider, other)
