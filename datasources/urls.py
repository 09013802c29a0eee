from django.urls import path

from datasources import views

app_name = "datasources"
urlpatterns = [
    path("", views.datasource_list, name="list"),
    path("new/<slug:kind>/", views.datasource_create, name="create"),
    path("<int:pk>/", views.datasource_edit, name="edit"),
    path("<int:pk>/delete/", views.datasource_delete, name="delete"),
    path("test/", views.datasource_test, name="test"),
    path("<int:pk>/test/", views.datasource_test, name="test_saved"),
]
