"""Serializers: the models' fields, validated by the models themselves.

``ValidatedModelSerializer`` (after NetBox's) runs ``full_clean()`` on the
object as the request would leave it, so the API refuses exactly what the
admin refuses, with the same field-keyed messages that name the rule.

Every reply of the API is built by a serializer here, including the replies
that are not models (readiness, the drain's outcome, refusals). A move has one
representation, :class:`MigrationSerializer`, which the websocket snapshot, the
CLI's ``--json``, the CSV export, the cluster snapshot and the drain reply use
too (see its docstring).
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from hvweb.inventory import access
from hvweb.inventory.choices import MigrationPolicy, PerformanceOption
from hvweb.inventory.models import (
    Cluster,
    ClusterSharedVolume,
    Host,
    NetworkAdapter,
    Team,
    VirtualDisk,
    VirtualMachine,
)
from hvweb.moves import options
from hvweb.moves.choices import STAGE_CHOICES
from hvweb.moves.models import Migration, MigrationPass, MigrationStage, Replay

from . import fields as strict
from .errors import validation_detail


class KnownFieldsOnly:
    """A serializer that refuses a body key it has no field for.

    DRF drops unknown keys silently, so a typo (``{"sped": 0}``) would run
    with the default it meant to change. Each unknown key is a 400 under its
    own name (nested: ``{"faults": {"bogus": [...]}}``). Read-only fields are
    known: a body read from the API and sent back is accepted, those values
    ignored as ever.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                known = ", ".join(
                    sorted(n for n, f in self.fields.items() if not f.read_only)
                )
                raise serializers.ValidationError(
                    {
                        key: [f"Unknown field. The fields taken here are: {known}."]
                        for key in unknown
                    }
                )
        return super().to_internal_value(data)


def _request_user(serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


class ValidatedModelSerializer(KnownFieldsOnly, serializers.ModelSerializer):
    """A ModelSerializer whose validation is the model's ``full_clean()``.

    Related objects are looked up among those the user may see (another
    team's id "does not exist"). ``parent_field`` names the relation through
    which a row reaches its team: the user must administer the new parent.
    """

    parent_field: str | None = None

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: strict.StrictCharField,
        models.TextField: strict.StrictCharField,
        models.IntegerField: strict.StrictIntegerField,
        models.PositiveIntegerField: strict.StrictIntegerField,
        models.PositiveSmallIntegerField: strict.StrictIntegerField,
        models.FloatField: strict.StrictFloatField,
        models.BooleanField: strict.StrictBooleanField,
    }
    serializer_choice_field = strict.StrictChoiceField
    serializer_related_field = strict.StrictPrimaryKeyRelatedField

    def get_fields(self):
        fields = super().get_fields()
        user = _request_user(self)
        for field in fields.values():
            queryset = getattr(field, "queryset", None)
            if queryset is not None and hasattr(queryset.model, "team_path"):
                field.queryset = queryset.restrict(user, "view")
        return fields

    def validate(self, data):
        data = super().validate(data)
        parent = data.get(self.parent_field) if self.parent_field else None
        if parent is not None and not access.may(
            _request_user(self), "administer", parent
        ):
            raise PermissionDenied(
                f"Putting an object in {parent} needs the administrator role in "
                f"its team."
            )
        if self.instance is None:
            instance = self.Meta.model(**data)
        else:
            instance = copy(self.instance)
            for name, value in data.items():
                setattr(instance, name, value)
        try:
            instance.full_clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(validation_detail(error)) from None
        return data


class TeamSerializer(serializers.ModelSerializer):
    """A team you belong to."""

    role = serializers.SerializerMethodField(
        help_text="Your role in this team (administrator for superusers)."
    )

    class Meta:
        model = Team
        fields = ["id", "name", "description", "role"]

    def get_role(self, team) -> str | None:
        user = _request_user(self)
        if user is not None and user.is_superuser:
            return "administrator"
        membership = team.memberships.filter(user_id=getattr(user, "pk", None))
        return membership.values_list("role", flat=True).first()


class ClusterSerializer(ValidatedModelSerializer):
    """A failover cluster and its live-migration settings."""

    parent_field = "team"

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "team",
            "shared_storage",
            "storage_kind",
            "max_simultaneous_migrations",
            "move_type_threshold",
            "performance_option",
            "default_policy",
            "link_bandwidth_mbps",
            "simulation_speed",
            "description",
        ]


class HostSerializer(ValidatedModelSerializer):
    """A Hyper-V host, listed in one cluster."""

    parent_field = "cluster"

    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "cluster",
            "hyperv_version",
            "cpu_vendor",
            "cpu_model",
            "boot_drive",
            "memory_mib",
            "shared_storage_connected",
            "cluster_node",
            "state",
            "compression_mbps",
        ]


class ClusterSharedVolumeSerializer(ValidatedModelSerializer):
    """A Cluster Shared Volume on the cluster's SAN."""

    parent_field = "cluster"

    class Meta:
        model = ClusterSharedVolume
        fields = ["id", "name", "cluster", "path", "capacity_gib", "owner", "state"]


class VirtualDiskSerializer(serializers.ModelSerializer):
    """A VHD, VHDX or passthrough disk; no CSV means local storage."""

    class Meta:
        model = VirtualDisk
        fields = ["id", "name", "kind", "csv", "path", "size_gib"]
        read_only_fields = fields


class NetworkAdapterSerializer(serializers.ModelSerializer):
    """A network adapter: MAC address and virtual switch."""

    class Meta:
        model = NetworkAdapter
        fields = ["id", "name", "mac_address", "virtual_switch"]
        read_only_fields = fields


class VirtualMachineSerializer(ValidatedModelSerializer):
    """A virtual machine on its current host, with its disks and adapters."""

    parent_field = "host"
    cluster = serializers.PrimaryKeyRelatedField(source="host.cluster", read_only=True)
    disks = VirtualDiskSerializer(many=True, read_only=True)
    adapters = NetworkAdapterSerializer(many=True, read_only=True)

    class Meta:
        model = VirtualMachine
        fields = [
            "id",
            "name",
            "host",
            "cluster",
            "memory_mib",
            "vcpus",
            "power_state",
            "highly_available",
            "automatic_start_action",
            "priority",
            "workload_profile",
            "write_rate",
            "working_set_pages",
            "disks",
            "adapters",
        ]


class RefSerializer(serializers.Serializer):
    """An object's id and name (a cluster, a host, a VM): a nested reference."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class FailureSerializer(serializers.Serializer):
    """A rule (or operational check) that does not hold, and how to fix it."""

    code = serializers.CharField()
    message = serializers.CharField()
    seed = serializers.CharField(help_text="The seed sentence the rule enforces.")
    fields = serializers.ListField(child=serializers.CharField())
    subjects = serializers.ListField(child=serializers.CharField())
    queueable = serializers.BooleanField()


# Reads {"host": Host, "failures": [Failure, ...]}.
class DestinationReadinessSerializer(serializers.Serializer):
    """Whether the VM may move to this host, and what fails."""

    host = RefSerializer()
    ready = serializers.SerializerMethodField()
    failures = FailureSerializer(many=True)

    def get_ready(self, destination) -> bool:
        return not destination["failures"]


# Reads {"vm": VirtualMachine, "operational": bool, "destinations": [...]}.
class ReadinessSerializer(serializers.Serializer):
    """A VM's readiness against every other host of its cluster."""

    vm = serializers.IntegerField(source="vm.pk")
    source = RefSerializer(source="vm.host")
    operational = serializers.BooleanField(
        help_text="Whether the operational checks (host up, free memory, ...) "
        "were evaluated too."
    )
    ready_hosts = serializers.SerializerMethodField()
    candidates = serializers.SerializerMethodField()
    destinations = DestinationReadinessSerializer(many=True)

    def get_ready_hosts(self, readiness) -> int:
        return sum(not d["failures"] for d in readiness["destinations"])

    def get_candidates(self, readiness) -> int:
        return len(readiness["destinations"])


# Reads an hvweb.inventory.actions.HAOutcome.
class HAOutcomeSerializer(serializers.Serializer):
    """What 'Configure as highly available' did."""

    vm = serializers.IntegerField(source="vm.pk")
    configured = serializers.BooleanField()
    already = serializers.BooleanField()
    highly_available = serializers.SerializerMethodField()
    failures = FailureSerializer(many=True)

    def get_highly_available(self, outcome) -> bool:
        return outcome.configured or outcome.already


# --- Live migrations -----------------------------------------------------------------


class MigrationStageSerializer(serializers.ModelSerializer):
    """One of the seven stages of a move, as it ran."""

    class Meta:
        model = MigrationStage
        fields = [
            "number",
            "stage",
            "outcome",
            "started_t",
            "duration_s",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class MigrationPassSerializer(serializers.ModelSerializer):
    """One pre-copy pass of the memory transfer."""

    class Meta:
        model = MigrationPass
        fields = [
            "pass_no",
            "pages_sent",
            "pages_dirtied",
            "zero_pages",
            "bytes",
            "duration_s",
            "dirty_rate",
            "expected_downtime_s",
            "remaining_dirty_pages",
            "t",
            "throttle_pct",
            "downtime_limit_ms",
        ]
        read_only_fields = fields


# The one representation of a move. The API's list and detail and the websocket
# snapshot (/ws/migrations/<id>/) are this; the CLI's --json and the CSV export
# are its flat form (FlatMigrationSerializer: objects by name); the cluster
# snapshot and the drain reply use its brief form (NestedMigrationSerializer).
class MigrationSerializer(serializers.ModelSerializer):
    """A live migration: what was asked, where it is, what it did.

    ``vm``, ``cluster``, ``source`` and ``destination`` are ids, as a start
    request and the filters take them; a drain's reply gives its moves in
    brief, with those as ``{id, name}``.
    """

    requested_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Who asked for the move (null: the server, or a deleted user).",
    )
    cancellable = serializers.BooleanField(read_only=True)
    # Blank until the move enters its first stage, or when it did not fail.
    stage = serializers.ChoiceField(
        choices=STAGE_CHOICES, allow_blank=True, read_only=True
    )
    failed_stage = serializers.ChoiceField(
        choices=STAGE_CHOICES, allow_blank=True, read_only=True
    )
    pass_count = serializers.IntegerField(
        source="passes",
        read_only=True,
        allow_null=True,
        help_text="Pre-copy passes made (null until the memory transfer ends).",
    )

    class Meta:
        model = Migration
        fields = [
            "id",
            "vm",
            "cluster",
            "source",
            "destination",
            "requested_by",
            "kind",
            "performance_option",
            "downtime_limit_ms",
            "policy",
            "speed",
            "faults",
            "reserved_memory_mib",
            "state",
            "stage",
            "cancel_requested",
            "cancellable",
            "switched_over",
            "progress",
            "created_at",
            "started_at",
            "finished_at",
            "pass_count",
            "stop_reason",
            "bytes_sent",
            "final_dirty_pages",
            "total_time_s",
            "downtime_s",
            "sampled",
            "verified",
            "predicted",
            "result",
            "failed_stage",
            "error_code",
            "error_message",
            "last_seq",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "reserved_memory_mib": {
                "help_text": "Memory set aside on the destination while the move "
                "is active (the VM's memory when it was asked for)."
            },
            "sampled": {
                "help_text": "The engine moved a sample of the pages: the guest's "
                "memory did not fit the worker's memory budget."
            },
            "last_seq": {
                "help_text": "The sequence number of the move's latest event "
                "(``/ws/migrations/<id>/?resume_from=`` takes it)."
            },
        }


class MigrationDetailSerializer(MigrationSerializer):
    """A live migration with its stages and pre-copy passes."""

    stages = MigrationStageSerializer(many=True, read_only=True)
    passes = MigrationPassSerializer(many=True, read_only=True, source="passes_done")

    class Meta(MigrationSerializer.Meta):
        fields = [*MigrationSerializer.Meta.fields, "stages", "passes"]
        read_only_fields = fields


class NestedMigrationSerializer(MigrationSerializer):
    """A move in brief (NetBox's nested form): its objects by id and name."""

    vm = RefSerializer(read_only=True)
    cluster = RefSerializer(read_only=True)
    source = RefSerializer(read_only=True)
    destination = RefSerializer(read_only=True)

    class Meta(MigrationSerializer.Meta):
        fields = ["id", "vm", "cluster", "source", "destination", "state", "stage"]
        read_only_fields = fields


class FlatMigrationSerializer(MigrationSerializer):
    """The record with its objects by name: the CLI's ``--json``, a CSV row."""

    vm = serializers.CharField(source="vm.name", read_only=True)
    cluster = serializers.CharField(source="cluster.name", read_only=True)
    source = serializers.CharField(source="source.name", read_only=True)
    destination = serializers.CharField(source="destination.name", read_only=True)


class _BoundsShownNotChecked:
    """A number field whose ``min_value``/``max_value`` the schema shows.

    :class:`hvweb.moves.options.MoveOptions` checks a move's options for every
    way in, with one message per rule; this field only refuses another JSON
    type.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            v
            for v in self.validators
            if not isinstance(v, MinValueValidator | MaxValueValidator)
        ]


class OptionIntegerField(_BoundsShownNotChecked, strict.StrictIntegerField):
    pass


class OptionFloatField(_BoundsShownNotChecked, strict.StrictFloatField):
    pass


class OptionChoiceField(strict.StrictChoiceField):
    """A string whose choices the schema lists; MoveOptions checks the value."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return data


def _fault(name: str, help_text: str) -> OptionIntegerField:
    low, high = options.FAULT_BOUNDS[name]
    return OptionIntegerField(
        required=False,
        allow_null=True,
        min_value=low,
        max_value=high,
        help_text=help_text,
    )


class FaultsSerializer(KnownFieldsOnly, serializers.Serializer):
    """Faults to inject into the move (drills)."""

    link_failure_pass = _fault(
        "link_failure_pass", "The link drops halfway through this pre-copy pass."
    )
    link_failure_byte = _fault(
        "link_failure_byte", "The link drops once this many bytes have crossed it."
    )
    refuse_destination = strict.StrictBooleanField(
        required=False, help_text="The destination refuses to create the VM."
    )
    corrupt_page = _fault(
        "corrupt_page",
        "This page is damaged in transit; verification must catch it.",
    )


class MoveOptionsSerializer(KnownFieldsOnly, serializers.Serializer):
    """How a move runs. Options left out take the cluster's settings.

    The service checks the values (``hvweb.moves.options.MoveOptions``): a bad
    one is a 400 naming the option.
    """

    performance_option = OptionChoiceField(
        choices=PerformanceOption.choices, required=False
    )
    downtime_limit_ms = OptionIntegerField(
        required=False,
        min_value=0,
        max_value=options.MAX_DOWNTIME_LIMIT_MS,
        help_text="Longest acceptable blackout; 0 means no limit. Default "
        f"{options.DEFAULT_DOWNTIME_LIMIT_MS}.",
    )
    policy = OptionChoiceField(
        choices=MigrationPolicy.choices,
        required=False,
        help_text="What pre-copy does with a guest that will not converge "
        "(migrator.policy). Default: the cluster's default_policy.",
    )
    speed = OptionFloatField(
        required=False,
        min_value=0,
        max_value=options.MAX_SPEED,
        help_text=f"Simulated seconds per wall second; 0 runs unpaced, else from "
        f"{options.MIN_SPEED:g}. Default: the cluster's simulation speed.",
    )


class MigrationStartSerializer(MoveOptionsSerializer):
    """A request to move a VM to another host of its cluster.

    The service checks the options and every rule
    (``hvweb.moves.services.start_migration``).
    """

    vm = strict.StrictPrimaryKeyRelatedField(queryset=VirtualMachine.objects.all())
    destination = strict.StrictPrimaryKeyRelatedField(queryset=Host.objects.all())
    faults = FaultsSerializer(required=False)

    def get_fields(self):
        fields = super().get_fields()
        user = _request_user(self)
        for name in ("vm", "destination"):
            fields[name].queryset = fields[name].queryset.restrict(user, "view")
        return fields


# --- Advice and replays ---------------------------------------------------------------


class AdviceChoiceSerializer(serializers.Serializer):
    """One performance option under one policy, as the predictor sees it."""

    performance_option = serializers.ChoiceField(choices=PerformanceOption.choices)
    performance_option_label = serializers.CharField()
    policy = serializers.ChoiceField(choices=MigrationPolicy.choices)
    outcome = serializers.ChoiceField(
        choices=["converges", "switches over", "aborts"],
        help_text="converges; switches over at the pass cap with what is left; "
        "aborts (NOT_CONVERGING, the VM stays on its source).",
    )
    passes = serializers.IntegerField()
    total_time_s = serializers.FloatField()
    downtime_s = serializers.FloatField()
    guest_slowdown_pct = serializers.FloatField(
        help_text="Share of the guest's writes its throttle holds back (%)."
    )
    converges = serializers.BooleanField()
    aborted = serializers.BooleanField()
    summary = serializers.CharField()


# Reads hvweb.moves.advice.VmAdvice.to_dict().
class AdviceSerializer(serializers.Serializer):
    """Every policy under every performance option for the VM, and the pick."""

    vm = serializers.IntegerField()
    link_bandwidth_mbps = serializers.IntegerField()
    downtime_limit_ms = serializers.IntegerField()
    host_version = serializers.CharField()
    choices = AdviceChoiceSerializer(many=True)
    recommended = serializers.IntegerField(
        help_text="Index into choices of the recommended one."
    )
    reason = serializers.CharField(help_text="Why, in one sentence.")


class ReplayPassSerializer(serializers.Serializer):
    """One pre-copy pass of a replay (the fields of a move's pass)."""

    pass_no = serializers.IntegerField()
    pages_sent = serializers.IntegerField()
    pages_dirtied = serializers.IntegerField()
    zero_pages = serializers.IntegerField()
    bytes = serializers.IntegerField()
    duration_s = serializers.FloatField()
    dirty_rate = serializers.FloatField()
    expected_downtime_s = serializers.FloatField()
    remaining_dirty_pages = serializers.IntegerField()
    t = serializers.FloatField()
    throttle_pct = serializers.FloatField()
    downtime_limit_ms = serializers.FloatField(allow_null=True)


class ReplaySerializer(serializers.ModelSerializer):
    """A what-if replay of a finished move: its settings and, once a worker ran
    it (``state`` done), the engine's result and passes."""

    requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    passes = ReplayPassSerializer(many=True, read_only=True)

    class Meta:
        model = Replay
        fields = [
            "id",
            "migration",
            "requested_by",
            "created_at",
            "policy",
            "performance_option",
            "link_bandwidth_mbps",
            "downtime_limit_ms",
            "state",
            "error",
            "wall_time_s",
            "result",
            "passes",
        ]
        read_only_fields = fields


class ReplayRequestSerializer(serializers.Serializer):
    """Settings to change for a replay; each left out is the move's own.

    The service checks the values (a move's rules for the first three, a
    cluster's for the link): a bad one is a 400 naming it.
    """

    policy = OptionChoiceField(choices=MigrationPolicy.choices, required=False)
    performance_option = OptionChoiceField(
        choices=PerformanceOption.choices, required=False
    )
    link_bandwidth_mbps = OptionIntegerField(required=False, min_value=1)
    downtime_limit_ms = OptionIntegerField(
        required=False, min_value=0, max_value=options.MAX_DOWNTIME_LIMIT_MS
    )


# Reads a hvweb.moves.services.MigrationRefused.
class MigrationRefusalSerializer(serializers.Serializer):
    """The rules refuse the move now: every failing rule, and how to fix it."""

    detail = serializers.CharField(source="*")
    failures = FailureSerializer(many=True)


# Reads a CancelRefused or DrainRefused.
class RefusalSerializer(serializers.Serializer):
    """The object's state refuses the action now."""

    code = serializers.CharField()
    detail = serializers.CharField(source="message")


class CancelRefusalSerializer(RefusalSerializer):
    """The move cannot be cancelled (any more)."""


class DrainRefusalSerializer(RefusalSerializer):
    """The host cannot be drained or resumed (it is down)."""


# --- Draining a host -----------------------------------------------------------------


class DrainStayedSerializer(serializers.Serializer):
    """A VM the drain left on the host, and why."""

    vm = RefSerializer()
    reason = serializers.CharField()
    failures = FailureSerializer(many=True)


# Reads a hvweb.moves.drain.DrainOutcome.
class DrainOutcomeSerializer(serializers.Serializer):
    """What draining the host did."""

    host = RefSerializer()
    state = serializers.CharField(
        source="host.state", help_text="The host's state now: paused."
    )
    paused_now = serializers.BooleanField(help_text="False: it was paused already.")
    complete = serializers.BooleanField(help_text="Every running VM is leaving.")
    moves = NestedMigrationSerializer(
        many=True,
        help_text="Started by this drain (running, or queued at a host's limit).",
    )
    under_way = NestedMigrationSerializer(many=True, help_text="Already moving before.")
    stayed = DrainStayedSerializer(many=True)
    summary = serializers.CharField(source="*")


class PlannedMoveSerializer(serializers.Serializer):
    """One move of a drain's timed plan (times: simulated seconds from its start)."""

    vm = serializers.CharField()
    vm_id = serializers.IntegerField()
    migration = serializers.IntegerField(
        allow_null=True, help_text="The move's id once it exists (null in a plan)."
    )
    priority = serializers.CharField(help_text="High, Medium, Low or No Auto Start.")
    power_state = serializers.CharField()
    kind = serializers.CharField(help_text="live, or quick (save, move, resume).")
    source = serializers.CharField()
    destination = serializers.CharField()
    order = serializers.IntegerField(help_text="Admission order, from 1.")
    queued = serializers.BooleanField(help_text="Waits for a slot at the start.")
    slot = serializers.IntegerField(
        help_text="Which of the source host's simultaneous migrations it runs in."
    )
    start_s = serializers.FloatField()
    end_s = serializers.FloatField()
    seconds = serializers.FloatField(help_text="The whole move, stages 1–7.")
    passes = serializers.IntegerField()
    total_time_s = serializers.FloatField(help_text="Memory transfer and blackout.")
    downtime_s = serializers.FloatField()
    bytes_sent = serializers.IntegerField()
    outlook = serializers.CharField()


class PlanStayedSerializer(serializers.Serializer):
    """A VM a drain would leave on the host: the rule that holds it."""

    vm = serializers.CharField()
    reason = serializers.CharField()
    codes = serializers.ListField(child=serializers.CharField())


# Reads a hvweb.maintenance.plan.DrainPlan.
class DrainPlanSerializer(serializers.Serializer):
    """What draining the host would do now, on the clock; nothing is changed."""

    host = serializers.CharField()
    host_id = serializers.IntegerField()
    failback = serializers.BooleanField(
        help_text="The VMs come back to the host (resume with failback)."
    )
    cluster = serializers.CharField()
    summary = serializers.CharField()
    performance_option = serializers.CharField()
    downtime_limit_ms = serializers.IntegerField()
    speed = serializers.FloatField()
    limit = serializers.IntegerField(help_text="Simultaneous migrations per host.")
    move_type_threshold = serializers.IntegerField()
    window_s = serializers.FloatField(
        help_text="Simulated seconds until the last move ends."
    )
    wall_window_s = serializers.FloatField(
        allow_null=True, help_text="The window at the moves' speed (null: unpaced)."
    )
    longest_blackout_s = serializers.FloatField()
    moves = PlannedMoveSerializer(many=True)
    stayed = PlanStayedSerializer(many=True)
    under_way = serializers.ListField(child=serializers.DictField())
    ahead = serializers.IntegerField(
        help_text="Other moves of the cluster that go first or hold slots."
    )

    def to_representation(self, instance):
        if hasattr(instance, "to_dict"):
            instance = instance.to_dict()
        return super().to_representation(instance)


class ResumeSerializer(MoveOptionsSerializer):
    """How to resume a host: ``Resume-ClusterNode -Failback NoFailback|Immediate``.

    With ``immediate`` the VMs its last drain moved away come back, with these
    move options.
    """

    failback = strict.StrictChoiceField(
        choices=[("none", "No failback"), ("immediate", "Fail back now")],
        required=False,
        default="none",
    )


# Reads a hvweb.maintenance.failback.FailbackOutcome.
class FailbackOutcomeSerializer(serializers.Serializer):
    """What resuming with failback did."""

    host = RefSerializer()
    state = serializers.CharField(source="host.state")
    complete = serializers.BooleanField(help_text="Every VM to bring back is coming.")
    moves = NestedMigrationSerializer(many=True, help_text="The moves back.")
    stayed = DrainStayedSerializer(many=True)
    summary = serializers.SerializerMethodField()

    def get_summary(self, outcome) -> str:
        return " ".join(outcome.lines())


class MaintenanceRunSerializer(serializers.Serializer):
    """A rolling maintenance run: where it is, its plan and its journal."""

    id = serializers.IntegerField(read_only=True)
    cluster = RefSerializer(read_only=True)
    state = serializers.CharField(read_only=True)
    hosts = serializers.SerializerMethodField()
    step = serializers.IntegerField(read_only=True, help_text="Hosts done so far.")
    phase = serializers.CharField(read_only=True)
    hold_s = serializers.FloatField(read_only=True)
    drain_only = serializers.BooleanField(read_only=True)
    start_at = serializers.DateTimeField(read_only=True, allow_null=True)
    end_by = serializers.DateTimeField(read_only=True, allow_null=True)
    time_zone = serializers.CharField(read_only=True)
    cancel_requested = serializers.BooleanField(read_only=True)
    error = serializers.CharField(read_only=True)
    plan = serializers.JSONField(read_only=True)
    journal = serializers.JSONField(read_only=True)
    records = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_hosts(self, run) -> list[str]:
        names = dict(Host.objects.filter(pk__in=run.hosts).values_list("pk", "name"))
        return [names.get(pk, str(pk)) for pk in run.hosts]

    def get_records(self, run) -> list[dict]:
        return [
            {"id": r.pk, "kind": r.kind, "host": r.host.name,
             "summary": r.plan.get("summary", "")}
            for r in run.records.select_related("host").order_by("created_at", "pk")
        ]  # fmt: skip


class MaintenanceStartSerializer(MoveOptionsSerializer):
    """A rolling maintenance run to start (or plan, with ``?dry_run=true``)."""

    hosts = serializers.ListField(
        child=strict.StrictIntegerField(), required=False,
        help_text="Host ids in the order to take them (default: every host up).",
    )  # fmt: skip
    hold_s = strict.StrictFloatField(
        required=False, default=300, min_value=0, max_value=7 * 24 * 3600,
        help_text="The maintenance period each host is held paused (seconds).",
    )  # fmt: skip
    drain_only = strict.StrictBooleanField(
        required=False, default=False,
        help_text="Drain the hosts and stop, leaving them paused (a scheduled "
        "drain): no hold, no failback.",
    )  # fmt: skip
    start_at = strict.StrictCharField(
        required=False, allow_blank=True,
        help_text="Start at (ISO 8601); without an offset, in time_zone. The "
        "beat starts it within seconds of its time.",
    )  # fmt: skip
    end_by = strict.StrictCharField(
        required=False, allow_blank=True,
        help_text="Start no move after this (ISO 8601; without an offset, in "
        "time_zone): the run stops cleanly and says which hosts were done.",
    )  # fmt: skip
    time_zone = strict.StrictCharField(
        required=False, default="UTC",
        help_text="The operator's IANA time zone, for entering and showing times.",
    )  # fmt: skip


class BalanceSerializer(MoveOptionsSerializer):
    """How to balance a cluster (Node Fairness)."""

    level_pct = strict.StrictFloatField(
        required=False, default=80, min_value=1, max_value=100,
        help_text="Move VMs off hosts whose memory use is over this level (%).",
    )  # fmt: skip


# Reads a hvweb.maintenance.balance.BalancePlan.
class BalancePlanSerializer(serializers.Serializer):
    """The moves that bring every host under the level, on the clock."""

    cluster = serializers.CharField()
    level_pct = strict.StrictFloatField()
    summary = serializers.CharField()
    window_s = serializers.FloatField()
    moves = PlannedMoveSerializer(many=True)
    hosts = serializers.ListField(child=serializers.DictField())
    stays = serializers.ListField(child=serializers.CharField())

    def to_representation(self, instance):
        if hasattr(instance, "to_dict"):
            instance = instance.to_dict()
        return super().to_representation(instance)
