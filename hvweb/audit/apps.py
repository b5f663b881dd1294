from django.apps import AppConfig
from django.conf import settings


class AuditConfig(AppConfig):
    name = "hvweb.audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from . import context, registry

        registry.register_models()
        context.connect()
        if getattr(settings, "HVWEB_FORGET_CONTENT_TYPES", False):
            forget_content_types_per_request_and_task()


def forget_content_types_per_request_and_task() -> None:
    """Clear Django's content-type cache before each request and Celery task.

    Each audit entry points at its model's content type, which Django caches
    per process. The test suite flushes the database between transactional
    tests, which recreates the content types under new ids, while the daphne
    and Celery processes it started live on: their cached ids would then name
    rows that no longer exist. Only the test settings turn this on; in
    production content types keep their ids.
    """
    from celery.signals import task_prerun
    from django.contrib.contenttypes.models import ContentType
    from django.core.signals import request_started

    def forget(**_kwargs) -> None:
        ContentType.objects.clear_cache()

    request_started.connect(forget, weak=False, dispatch_uid="hvweb-audit-ct")
    task_prerun.connect(forget, weak=False, dispatch_uid="hvweb-audit-ct")
