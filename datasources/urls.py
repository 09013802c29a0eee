from django.urls import path

from datasources import views
from datasources.plugins.smtp import views as smtp_views

app_name = "datasources"
urlpatterns = [
    path("", views.datasource_list, name="list"),
    path("new/<slug:kind>/", views.datasource_create, name="create"),
    path("<int:pk>/", views.datasource_edit, name="edit"),
    path("<int:pk>/delete/", views.datasource_delete, name="delete"),
    path("test/", views.datasource_test, name="test"),
    path("<int:pk>/test/", views.datasource_test, name="test_saved"),
    path("<int:pk>/oauth2/start/", smtp_views.oauth2_start, name="oauth2_start"),
]
