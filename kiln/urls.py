from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from kiln import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("w/<slug:workspace>/datasources/", include("datasources.urls")),
    path("oauth2/", include("datasources.oauth2_urls")),
    path("w/<slug:workspace>/audit/", include("workspaces.audit_urls")),
    path("", include("workspaces.urls")),
    path("devmailbox/", include("devmailbox.urls")),
    path("api/v1/", include("queries.urls")),
    path("apps/", include("viewer.urls")),
    path("", include("editor.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
