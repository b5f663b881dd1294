from django.apps import AppConfig


class ObserveConfig(AppConfig):
    """Observability: ``/metrics`` for Prometheus, Hyper-V's event IDs on moves."""

    name = "hvweb.observe"
    label = "observe"
    verbose_name = "Observability"
