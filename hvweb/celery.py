"""The Celery application: broker and result backend come from Django's settings."""

import os

from celery import Celery
from celery.signals import worker_process_init
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hvweb.settings")

app = Celery("hvweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Consumer(CeleryConsumer):
    """Celery's worker consumer, without 5.7.0's crash when Redis goes away.

    On a lost broker connection, Celery 5.7.0 first ``collect()``s the
    connection, which closes its channel and releases the transport, then
    ``close()``s it. On Redis that second close closes the channel again when the
    first one stopped early (the worker's BRPOP was pending on the dead socket):
    kombu restores the running tasks' unacknowledged messages through the
    released transport, ``self.connection.client`` is None and
    ``AttributeError: 'NoneType' object has no attribute 'hostname'`` escapes
    ``ignore_errors`` and ends the worker after its running tasks. Celery 5.6.3
    only collected; so does this consumer, which skips the second close.
    Configured with ``CELERY_WORKER_CONSUMER``; see ``test_faults``.
    """

    def on_connection_error_after_connected(self, exc):
        if self.connection is not None:
            # An instance attribute: the discarded connection alone is affected.
            self.connection.close = self.connection.release = _released
        super().on_connection_error_after_connected(exc)


def _released() -> None:
    """``close()`` of a connection that ``collect()`` has already released."""


@worker_process_init.connect
def lower_priority(**_: object) -> None:
    """Run a pool process (the simulated guests) below the web process's CPU
    priority: ``HVWEB_WORKER_NICE`` steps of niceness (Unix only).

    Celery's prefork pool sends ``worker_process_init`` in each child it forks
    (``celery.concurrency.prefork.process_initializer``); the worker's main
    process, which takes the jobs off the queue, keeps its priority.
    """
    from django.conf import settings

    step = settings.HVWEB_WORKER_NICE
    if step > 0 and hasattr(os, "nice"):
        os.nice(step)
