from django.urls import path

from devmailbox import views

app_name = "devmailbox"
urlpatterns = [
    path("", views.message_list, name="list"),
    path("clear/", views.clear, name="clear"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/html/", views.html, name="html"),
    path("<int:pk>/raw.eml", views.raw, name="raw"),
    path("<int:pk>/attachments/<int:index>", views.attachment, name="attachment"),
]
