from django.apps import AppConfig


class MovesConfig(AppConfig):
    """Live migrations: the record, the start service, the task and the streams."""

    name = "hvweb.moves"
    label = "moves"
    verbose_name = "Live migrations"

    def ready(self) -> None:
        from . import revocation

        revocation.connect()
