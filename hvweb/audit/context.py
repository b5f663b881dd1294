"""Who changed state, and through which door: every audit entry's actor and "via".

The web's doors (the pages, the API, the admin) are stamped by the audit
middleware from the request's user and path. The CLI's state-changing commands
(``AuditedCommand``) act as their ``--user`` (or, without one, record the
operating-system account that ran them), and a Celery worker's writes say
"worker". Each entry's ``additional_data`` then has ``via`` (``page``, ``api``,
``admin``, ``cli``, ``worker``) and, from the CLI, ``command`` and ``os_user``.
"""

from __future__ import annotations

import contextlib
import getpass
from contextvars import ContextVar
from typing import Any

from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.core.management.base import BaseCommand
from django.db.models.signals import pre_save

__all__ = ["AuditedCommand", "acting", "connect", "current", "via_for_path"]

_stamp: ContextVar[dict[str, Any] | None] = ContextVar("hvweb_audit_via", default=None)
#: The object whose entry auditlog is about to write (set by
#: ``hvweb.audit.registry`` from auditlog's pre_log signal, cleared at post_log).
pending_object: ContextVar[Any] = ContextVar("hvweb_audit_object", default=None)


@contextlib.contextmanager
def acting(user, via: str, **extra: Any):
    """Within the block, audit entries name ``user`` (if any) and ``via``."""
    token = _stamp.set({"via": via, **extra})
    try:
        if user is not None:
            with set_actor(user):
                yield
        else:
            yield
    finally:
        _stamp.reset(token)


def current() -> dict[str, Any]:
    """The door (and CLI details) of the code running now, for entries written
    without signals (``bulk_create``)."""
    return dict(_stamp.get() or {})


def via_for_path(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "page"


def _stamp_entry(sender, instance, **kwargs) -> None:
    if not instance._state.adding:
        return
    from .registry import team_of

    stamp = dict(_stamp.get() or {})
    obj = pending_object.get()
    if obj is not None and str(obj.pk) == str(instance.object_pk):
        team = team_of(obj)
        if team is not None:
            stamp["team"] = team
    if stamp:
        instance.additional_data = {**stamp, **(instance.additional_data or {})}


def connect() -> None:
    pre_save.connect(_stamp_entry, sender=LogEntry, dispatch_uid="hvweb-audit-via")


class AuditedCommand(BaseCommand):
    """A management command whose changes are audited as its ``--user``.

    Without ``--user`` the command acts as the server itself; the entry then
    names the operating-system account that ran it.
    """

    def execute(self, *args, **options):
        from hvweb.moves.management.commands._common import user_named

        user = user_named(options.get("user"))
        extra: dict[str, Any] = {"command": self.__module__.rsplit(".", 1)[-1]}
        if user is None:
            try:
                extra["os_user"] = getpass.getuser()
            except Exception:  # noqa: BLE001 - no login name (a bare container)
                extra["os_user"] = "unknown"
        with acting(user, "cli", **extra):
            return super().execute(*args, **options)
