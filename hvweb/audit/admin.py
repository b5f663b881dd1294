"""The audit trail in the admin: filterable by who, when, what and which kind.

Reading it needs Django's ``auditlog.view_logentry`` permission (superusers
have it): team roles give no access to other people's actions.
"""

from __future__ import annotations

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin

admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditEntryAdmin(LogEntryAdmin):
    list_filter = [
        "action",
        ("actor", admin.RelatedOnlyFieldListFilter),
        ("content_type", admin.RelatedOnlyFieldListFilter),
        "timestamp",
    ]
    search_fields = [*LogEntryAdmin.search_fields, "object_pk", "remote_addr"]
