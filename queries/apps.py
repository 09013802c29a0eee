from django.apps import AppConfig


class QueriesConfig(AppConfig):
    name = "queries"

    def ready(self) -> None:
        # Registers the check that the Celery and outbox times nest.
        from queries import checks  # noqa: F401
