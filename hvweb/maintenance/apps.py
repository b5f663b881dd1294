from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    """Timed drain plans and the record of each drain against its plan."""

    name = "hvweb.maintenance"
    label = "maintenance"
    verbose_name = "Maintenance"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)
