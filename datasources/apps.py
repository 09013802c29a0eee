from django.apps import AppConfig


class DatasourcesConfig(AppConfig):
    name = "datasources"

    def ready(self) -> None:
        # Registers the check that the OAuth2 endpoints are https.
        from datasources import checks  # noqa: F401
