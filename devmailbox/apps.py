from django.apps import AppConfig


class DevmailboxConfig(AppConfig):
    name = "devmailbox"
    verbose_name = "Dev mailbox"
