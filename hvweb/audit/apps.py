from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "hvweb.audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from . import registry

        registry.register_models()
