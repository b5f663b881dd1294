"""Querysets every team-owned model's manager uses (NetBox's ``RestrictedQuerySet``).

``Model.objects.restrict(user, action)`` is how views, API views, consumers,
commands and forms' choice lists narrow rows to what a user may see or act
on; the rule itself is :func:`hvweb.inventory.access.restrict`.
"""

from __future__ import annotations

from django.db import models

from migrator.rules import MEMORY_HOLDING_STATES

from . import access

__all__ = ["RestrictedQuerySet", "VirtualMachineQuerySet"]


class RestrictedQuerySet(models.QuerySet):
    """A queryset that can narrow itself to a user's teams."""

    def restrict(self, user, action: access.Action = "view"):
        """The rows ``user`` may take ``action`` on (none for a stranger)."""
        return access.restrict(self, user, action)


class VirtualMachineQuerySet(RestrictedQuerySet):
    def holding_memory(self):
        """The VMs whose power state holds their memory on their host."""
        return self.filter(power_state__in=MEMORY_HOLDING_STATES)
