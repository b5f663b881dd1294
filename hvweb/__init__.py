"""hvweb: a console for live-migrating Hyper-V virtual machines."""

# Imported here so that ``task.delay()`` inside daphne finds the configured app
# (otherwise Celery falls back to its default broker, amqp://localhost).
from .celery import app as celery_app

__all__ = ["celery_app"]
