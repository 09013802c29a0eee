from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

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
    # Browsers ask for /favicon.ico on any page without a <link rel="icon"> (an eml, a
    # JSON response): the same icon as the templates link, not a 404 in the console.
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("img/favicon.svg"), permanent=True),
        name="favicon",
    ),
    path("admin/", admin.site.urls),
]
