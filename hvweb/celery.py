"""The Celery application: broker and result backend come from Django's settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hvweb.settings")

app = Celery("hvweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
