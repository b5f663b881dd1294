"""Moves in the admin: read-only records, filterable, cancellable by operators."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from hvweb.inventory import access
from hvweb.inventory.admin import TeamScopedAdmin

from .models import Migration, MigrationPass, MigrationStage, Replay
from .services import CancelRefused, cancel_migration


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


class StageInline(_ReadOnlyInline):
    model = MigrationStage
    fields = ["number", "stage", "outcome", "started_t", "duration_s", "started_at"]


class PassInline(_ReadOnlyInline):
    model = MigrationPass
    fields = [
        "pass_no", "pages_sent", "pages_dirtied", "zero_pages", "bytes",
        "duration_s", "dirty_rate", "expected_downtime_s", "throttle_pct",
        "downtime_limit_ms",
    ]  # fmt: skip


class ReplayInline(_ReadOnlyInline):
    model = Replay
    fields = [
        "created_at", "requested_by", "policy", "performance_option",
        "link_bandwidth_mbps", "downtime_limit_ms", "state", "wall_time_s",
    ]  # fmt: skip


@admin.register(Migration)
class MigrationAdmin(TeamScopedAdmin):
    """Moves are made by the start service, never typed in: the admin only shows
    them and cancels them through the same service as every other entry point."""

    list_display = [
        "id", "vm", "source", "destination", "state", "stage", "requested_by",
        "created_at", "policy", "passes", "downtime_s", "error_code",
    ]  # fmt: skip
    list_filter = ["state", "cluster", "performance_option", "policy", "created_at"]
    search_fields = ["vm__name", "source__name", "destination__name", "error_code"]
    date_hierarchy = "created_at"
    inlines = [StageInline, PassInline, ReplayInline]
    actions = ["cancel_moves"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_operate_permission(self, request):
        return access.has_role_anywhere(request.user, "operate")

    @admin.action(description="Cancel the selected moves", permissions=["operate"])
    def cancel_moves(self, request, queryset):
        for migration in queryset:
            try:
                cancel_migration(migration, request.user)
            except CancelRefused as exc:
                self.message_user(
                    request, f"#{migration.pk}: {exc.message}", messages.ERROR
                )
            except PermissionDenied as exc:  # operator in another team only
                self.message_user(request, f"#{migration.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request, f"#{migration.pk}: cancel requested", messages.SUCCESS
                )
