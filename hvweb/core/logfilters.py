"""Logging filters that keep routine lines out of the operator's console."""

from __future__ import annotations

import logging

#: The reaper's task and its beat entry (see ``CELERY_BEAT_SCHEDULE``).
REAPER_NAMES = (
    "hvweb.reap_lost_migrations",
    "reap-lost-migrations",
    "hvweb.advance_maintenance_runs",
    "advance-maintenance-runs",
)


class RoutineReaper(logging.Filter):
    """Drops Celery's lines about the reaper: it runs every few seconds.

    Sent, received, succeeded: three lines every ten seconds would bury the
    lines about moves. A move it does reap is logged by the task itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:  # a routine task that fails is news
            return True
        message = record.getMessage()
        return not any(name in message for name in REAPER_NAMES)


class HealthProbes(logging.Filter):
    """Drops Django's "Service Unavailable: /healthz" errors.

    A 503 is the health check's answer, not a server error (a starting
    console answers it until its worker is up); the view logs what fails.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return getattr(request, "path", None) != "/healthz"
