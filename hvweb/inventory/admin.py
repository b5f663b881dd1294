"""The inventory in Django's admin, scoped to the user's teams.

Team roles, not Django's model permissions, decide what staff may do here:
viewers and operators see their teams' objects, administrators also add,
change and delete them; superusers see everything. Another team's object is a
404, never a redirect that would confirm it exists. Saving runs the models'
``clean()``, so the seed's rules refuse a change with field-keyed errors.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.html import format_html, format_html_join

from migrator import rules

from . import access, snapshots, validation
from .actions import configure_highly_available
from .models import (
    Cluster,
    ClusterSharedVolume,
    Host,
    Membership,
    NetworkAdapter,
    Team,
    VirtualDisk,
    VirtualMachine,
)


def visible_rows(model, user, action: access.Action = "view"):
    """The rows of ``model`` the admin may show ``user`` as choices or filters.

    Team-owned models go through ``restrict()``; users are those of the user's
    own teams (a superuser sees all); anything else only a superuser sees.
    This is the one place admin filter sidebars and form choice lists narrow
    their choices.
    """
    manager = model._default_manager
    if hasattr(model, "team_path"):
        return manager.restrict(user, action)
    if user.is_superuser:
        return manager.all()
    if model is get_user_model():
        return manager.filter(memberships__team__in=access.team_ids(user, "view"))
    return manager.none()


def _restricted_choices(db_field, request, kwargs) -> None:
    """Offer only related objects the user administers (e.g. their clusters)."""
    kwargs["queryset"] = visible_rows(
        db_field.remote_field.model, request.user, "administer"
    ).distinct()


class RestrictedRelatedFilter(admin.RelatedFieldListFilter):
    """A related-field filter whose choices are the rows the user may see."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        rows = visible_rows(field.related_model, request.user, "view").distinct()
        return [(row.pk, str(row)) for row in rows.order_by(*ordering)]


def scoped_list_filter(model, list_filter):
    """``list_filter`` with every related field filtered through the scope."""
    scoped = []
    for entry in list_filter:
        if isinstance(entry, str):
            field = get_fields_from_path(model, entry)[-1]
            if field.is_relation:
                entry = (entry, RestrictedRelatedFilter)
        elif (
            isinstance(entry, tuple)
            and issubclass(entry[1], admin.RelatedFieldListFilter)
            and not issubclass(entry[1], admin.RelatedOnlyFieldListFilter)
        ):
            entry = (entry[0], RestrictedRelatedFilter)
        scoped.append(entry)
    return scoped


class TeamScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin that shows and edits only the objects of the user's teams."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "view")

    def get_list_filter(self, request):
        return scoped_list_filter(self.model, super().get_list_filter(request))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj

    def has_module_permission(self, request):
        return request.user.is_staff and access.has_role_anywhere(request.user, "view")

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return access.has_role_anywhere(request.user, "view")
        return access.may(request.user, "view", obj)

    def has_add_permission(self, request):
        return access.has_role_anywhere(request.user, "administer")

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return access.has_role_anywhere(request.user, "administer")
        return access.may(request.user, "administer", obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        _restricted_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TeamScopedInline(admin.TabularInline):
    """An inline editable by the parent's team administrators."""

    extra = 0

    def _administers(self, request, obj) -> bool:
        if obj is None:
            return access.has_role_anywhere(request.user, "administer")
        return access.may(request.user, "administer", obj)

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return access.has_role_anywhere(request.user, "view")
        return access.may(request.user, "view", obj)

    def has_add_permission(self, request, obj=None):
        return self._administers(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._administers(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._administers(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        _restricted_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    list_display = ["name", "description"]
    search_fields = ["name"]

    def has_add_permission(self, request):
        # A new team has no members yet: only a superuser can own it meanwhile.
        return request.user.is_superuser


class MembershipForm(forms.ModelForm):
    """A membership names its user by exact user name: no list of every user."""

    username = forms.CharField(
        label="User name",
        max_length=150,
        help_text="The user's exact user name (ask them for it).",
    )

    class Meta:
        model = Membership
        fields = ["username", "team", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["username"].initial = self.instance.user.get_username()

    def clean_username(self):
        User = get_user_model()
        name = self.cleaned_data["username"]
        try:
            self.instance.user = User._default_manager.get(
                **{User.USERNAME_FIELD: name}
            )
        except User.DoesNotExist:
            raise ValidationError(
                "No user has exactly this user name.", code="invalid"
            ) from None
        return name

    def _get_validation_exclusions(self):
        # "user" is set from the user name: the model's rules (one role per
        # user and team) still apply to it.
        exclude = super()._get_validation_exclusions()
        if self.instance.user_id is not None:
            exclude.discard("user")
        return exclude


@admin.register(Membership)
class MembershipAdmin(TeamScopedAdmin):
    form = MembershipForm
    list_display = ["user", "team", "role"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__name"]


@admin.register(Cluster)
class ClusterAdmin(TeamScopedAdmin):
    list_display = [
        "name",
        "team",
        "shared_storage",
        "storage_kind",
        "max_simultaneous_migrations",
        "performance_option",
        "default_policy",
        "link_bandwidth_mbps",
    ]
    list_filter = [
        "team",
        "shared_storage",
        "storage_kind",
        "performance_option",
        "default_policy",
    ]
    search_fields = ["name"]


@admin.register(Host)
class HostAdmin(TeamScopedAdmin):
    list_display = [
        "name",
        "cluster",
        "hyperv_version",
        "cpu_vendor",
        "boot_drive",
        "memory_mib",
        "shared_storage_connected",
        "cluster_node",
        "state",
    ]
    list_filter = [
        "cluster",
        "hyperv_version",
        "cpu_vendor",
        "boot_drive",
        "state",
        "shared_storage_connected",
        "cluster_node",
    ]
    search_fields = ["name", "cpu_model"]
    list_select_related = ["cluster"]


@admin.register(ClusterSharedVolume)
class ClusterSharedVolumeAdmin(TeamScopedAdmin):
    list_display = ["name", "cluster", "path", "capacity_gib", "owner", "state"]
    list_filter = ["cluster", "state"]
    search_fields = ["name", "path"]
    list_select_related = ["cluster", "owner"]


class VirtualDiskInline(TeamScopedInline):
    model = VirtualDisk
    fields = ["name", "kind", "csv", "path", "size_gib"]


class NetworkAdapterInline(TeamScopedInline):
    model = NetworkAdapter
    fields = ["name", "mac_address", "virtual_switch"]


class ReadinessChangeList(ChangeList):
    """Attaches each listed VM's readiness summary, computed once per page."""

    def get_results(self, request):
        super().get_results(request)
        summary = snapshots.readiness_by_vm(self.result_list)
        for vm in self.result_list:
            vm.readiness = summary[vm.pk]


def _vms_with_readiness(queryset, keep) -> list[int]:
    vms = list(queryset.select_related("host__cluster"))
    summary = snapshots.readiness_by_vm(vms)
    return [vm.pk for vm in vms if keep(summary[vm.pk])]


class ReadyFilter(admin.SimpleListFilter):
    title = "live-migration readiness"
    parameter_name = "ready"

    def lookups(self, request, model_admin):
        return [("yes", "May move to some host"), ("no", "May move nowhere")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        want = self.value() == "yes"
        return queryset.filter(
            pk__in=_vms_with_readiness(queryset, lambda r: r.ready == want)
        )


class FailingRuleFilter(admin.SimpleListFilter):
    title = "failing rule"
    parameter_name = "failing"

    def lookups(self, request, model_admin):
        return [(rule.code, rule.code) for rule in rules.RULES]

    def queryset(self, request, queryset):
        code = self.value()
        if code not in {rule.code for rule in rules.RULES}:
            return queryset
        return queryset.filter(
            pk__in=_vms_with_readiness(queryset, lambda r: code in r.codes)
        )


@admin.register(VirtualMachine)
class VirtualMachineAdmin(TeamScopedAdmin):
    list_display = [
        "name",
        "host",
        "cluster_name",
        "memory_mib",
        "power_state",
        "highly_available",
        "automatic_start_action",
        "priority",
        "readiness",
    ]
    list_filter = [
        ReadyFilter,
        FailingRuleFilter,
        "host__cluster",
        "power_state",
        "highly_available",
        "automatic_start_action",
        "workload_profile",
    ]
    search_fields = ["name", "host__name"]
    list_select_related = ["host__cluster"]
    inlines = [VirtualDiskInline, NetworkAdapterInline]
    actions = ["configure_ha"]
    fieldsets = [
        (None, {"fields": ["name", "host", "memory_mib", "vcpus", "power_state"]}),
        (
            "High availability",
            {"fields": ["highly_available", "automatic_start_action", "priority"]},
        ),
        (
            "Simulated guest workload",
            {"fields": ["workload_profile", "write_rate", "working_set_pages"]},
        ),
    ]

    def get_changelist(self, request, **kwargs):
        return ReadinessChangeList

    def get_form(self, request, obj=None, change=False, **kwargs):
        """Ticking HA and moving disks onto CSVs can be one save.

        While the disk inline is editable, each disk checks its own placement
        on the VM as this save leaves it (``VirtualDisk.clean``), so the VM's
        form leaves out the VM's HIGHLY_AVAILABLE errors, which come from the
        disks stored before the save.
        """
        form = super().get_form(request, obj, change, **kwargs)
        if not any(
            isinstance(inline, VirtualDiskInline)
            and (
                inline.has_change_permission(request, obj)
                or inline.has_add_permission(request, obj)
            )
            for inline in self.get_inline_instances(request, obj)
        ):
            return form

        class DisksCheckedApart(form):
            def add_error(self, field, error):
                if isinstance(error, ValidationError):
                    error = validation.without_rule(error, "HIGHLY_AVAILABLE")
                    if not error.messages:
                        return
                super().add_error(field, error)

        return DisksCheckedApart

    @admin.display(description="cluster", ordering="host__cluster__name")
    def cluster_name(self, vm):
        return vm.host.cluster.name

    @admin.display(description="readiness")
    def readiness(self, vm):
        summary = getattr(vm, "readiness", None)
        if summary is None:
            summary = snapshots.readiness_by_vm([vm])[vm.pk]
        codes = format_html_join(
            " ", '<code class="rule-code">{}</code>', ((c,) for c in summary.codes)
        )
        return format_html(
            '<span class="{}">{} of {} hosts</span> {}',
            "ready" if summary.ready else "not-ready",
            summary.ready_hosts,
            summary.candidates,
            codes,
        )

    def has_configure_ha_permission(self, request):
        return access.has_role_anywhere(request.user, "operate")

    @admin.action(
        description="Configure as highly available", permissions=["configure_ha"]
    )
    def configure_ha(self, request, queryset):
        allowed = queryset.restrict(request.user, "operate")
        for vm in queryset.exclude(pk__in=allowed.values("pk")):
            self.message_user(
                request,
                f"{vm} was not changed: configuring HA needs the operator or "
                f"administrator role in its cluster's team.",
                messages.ERROR,
            )
        for outcome in configure_highly_available(allowed):
            self.message_user(
                request,
                str(outcome),
                messages.ERROR if outcome.failures else messages.SUCCESS,
            )


@admin.register(VirtualDisk)
class VirtualDiskAdmin(TeamScopedAdmin):
    list_display = ["name", "vm", "kind", "csv", "path", "size_gib"]
    list_filter = ["kind", "vm__host__cluster"]
    search_fields = ["name", "vm__name", "path"]
    list_select_related = ["vm", "csv__cluster"]


@admin.register(NetworkAdapter)
class NetworkAdapterAdmin(TeamScopedAdmin):
    list_display = ["name", "vm", "mac_address", "virtual_switch"]
    search_fields = ["mac_address", "vm__name", "virtual_switch"]
    list_select_related = ["vm"]
