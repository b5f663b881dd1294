from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Signed webhooks: endpoints per team, deliveries retried with backoff."""

    name = "hvweb.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the signal receivers)
