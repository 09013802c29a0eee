from __future__ import annotations

from django.urls import path

from workspaces import views

app_name = "workspaces"
urlpatterns = [
    path("workspaces/new", views.workspace_create, name="create"),
    path("workspaces/switch", views.switch, name="switch"),
    path("w/<slug:workspace>/members/", views.members, name="members"),
    path("w/<slug:workspace>/members/invite", views.invite, name="invite"),
    path("w/<slug:workspace>/members/<int:member>/role", views.member_role, name="member_role"),
    path(
        "w/<slug:workspace>/members/<int:member>/remove",
        views.member_remove,
        name="member_remove",
    ),
    path(
        "w/<slug:workspace>/invitations/<int:invitation>/revoke",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
]
