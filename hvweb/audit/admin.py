"""The audit trail in the admin: filterable by who, when, what and which kind.

Superusers read every entry; a team's administrators read the entries about
their team's objects (the team each entry recorded, see
``hvweb.audit.registry``), and nothing else: not other teams', not users'.
Nobody edits or deletes an entry here (auditlog's admin allows neither).
"""

from __future__ import annotations

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.http import Http404

from hvweb.inventory import access

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

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        teams = list(
            access.team_ids(request.user, "administer").values_list(
                "team_id", flat=True
            )
        )
        return queryset.filter(additional_data__team__in=teams)

    def has_module_permission(self, request):
        return request.user.is_staff and access.has_role_anywhere(
            request.user, "administer"
        )

    def has_view_permission(self, request, obj=None):
        if not self.has_module_permission(request):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such entry.")
        return obj
