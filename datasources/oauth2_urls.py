"""The OAuth2 redirect URI: one fixed address outside any workspace, as providers
register it (datasources/plugins/smtp/views.py)."""

from __future__ import annotations

from django.urls import path

from datasources.plugins.smtp import views as smtp_views

urlpatterns = [
    path("callback/", smtp_views.oauth2_callback, name="oauth2_callback"),
]
