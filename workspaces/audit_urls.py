from django.urls import path

from workspaces import audit_views

app_name = "audit"
urlpatterns = [path("", audit_views.audit_log, name="log")]
