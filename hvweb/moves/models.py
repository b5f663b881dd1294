"""The record of a live migration: the move, its stages, its passes, its events.

A move's stages and passes are rows, so a viewer who arrives late (or reads the
history) sees the whole of it; its events are rows with a per-move sequence
number, so a websocket client that reconnects resumes without gaps.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from hvweb.core.urls import url_of
from hvweb.inventory.choices import MigrationPolicy, PerformanceOption
from hvweb.inventory.models import Cluster, Host, VirtualMachine
from hvweb.inventory.querysets import RestrictedQuerySet
from migrator.eventlog import TITLES, EventId
from migrator.stages import Stage

from .choices import (
    STAGE_CHOICES,
    MigrationState,
    MoveKind,
    ReplayState,
    StageOutcome,
)
from .options import DEFAULT_DOWNTIME_LIMIT_MS


class Migration(models.Model):
    """One live migration of a VM from its host to another host of its cluster."""

    vm = models.ForeignKey(
        VirtualMachine, on_delete=models.PROTECT, related_name="migrations"
    )
    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, related_name="migrations"
    )
    source = models.ForeignKey(
        Host, on_delete=models.PROTECT, related_name="outgoing_migrations"
    )
    destination = models.ForeignKey(
        Host, on_delete=models.PROTECT, related_name="incoming_migrations"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="migrations",
    )
    # Options, fixed when the move is requested.
    kind = models.CharField(
        max_length=10,
        choices=MoveKind,
        default=MoveKind.LIVE,
        help_text="Live migration, or quick migration (save, move, resume).",
    )
    performance_option = models.CharField(max_length=20, choices=PerformanceOption)
    downtime_limit_ms = models.PositiveIntegerField(default=DEFAULT_DOWNTIME_LIMIT_MS)
    policy = models.CharField(
        "convergence policy",
        max_length=20,
        choices=MigrationPolicy,
        default=MigrationPolicy.HYPERV,
    )
    speed = models.FloatField(
        help_text="Simulated seconds per wall second; 0 runs unpaced."
    )
    faults = models.JSONField(
        default=dict, blank=True, help_text="Injected faults (drills and tests)."
    )
    reserved_memory_mib = models.PositiveIntegerField(
        help_text="Memory set aside on the destination while the move is active."
    )
    start_by = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A move not started by then is not started (the end of a "
        "maintenance window).",
    )
    # Where it is.
    state = models.CharField(
        max_length=10, choices=MigrationState, default=MigrationState.QUEUED
    )
    stage = models.CharField(max_length=30, choices=STAGE_CHOICES, blank=True)
    cancel_requested = models.BooleanField(default=False)
    switched_over = models.BooleanField(
        default=False, help_text="The VM was brought online on the destination."
    )
    last_seq = models.PositiveIntegerField(default=0)
    progress = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # What it did.
    passes = models.PositiveIntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=20, blank=True)
    bytes_sent = models.BigIntegerField(null=True, blank=True)
    final_dirty_pages = models.BigIntegerField(null=True, blank=True)
    total_time_s = models.FloatField(null=True, blank=True)
    downtime_s = models.FloatField(null=True, blank=True)
    sampled = models.BooleanField(default=False)
    verified = models.BooleanField(default=False)
    predicted = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    spec = models.JSONField(
        default=dict,
        blank=True,
        help_text="The engine's input as the move ran (what a replay re-runs).",
    )
    failed_stage = models.CharField(max_length=30, choices=STAGE_CHOICES, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)

    objects = RestrictedQuerySet.as_manager()

    team_path = "cluster__team"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["vm"],
                condition=Q(state__in=MigrationState.active()),
                name="one_active_migration_per_vm",
                violation_error_message="This VM is already being moved.",
            ),
            models.CheckConstraint(
                condition=~Q(source=models.F("destination")),
                name="migration_destination_differs_from_source",
                violation_error_message="The destination must differ from the source.",
            ),
            models.CheckConstraint(
                condition=Q(speed__gte=0),
                name="migration_speed_not_negative",
                violation_error_message="The speed must be 0 (unpaced) or more.",
            ),
        ]
        indexes = [models.Index(fields=["state"], name="migration_state_idx")]
        permissions = [
            ("operate_migration", "Can start and cancel live migrations"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.vm} {self.source} → {self.destination}"

    def get_absolute_url(self) -> str:
        return url_of("moves:migration", self.pk)

    @property
    def active(self) -> bool:
        return self.state in MigrationState.active()

    @property
    def wall_s(self) -> float | None:
        """Wall-clock seconds from a worker taking the move to its end."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def cancellable(self) -> bool:
        """Hyper-V accepts a cancel while queued and during stages 1–3."""
        if self.state == MigrationState.QUEUED:
            return True
        if self.state != MigrationState.RUNNING:
            return False
        return not self.stage or Stage(self.stage).cancellable

    @property
    def state_colour(self) -> str:
        return MigrationState.colour_of(self.state)


class MigrationStage(models.Model):
    """One of the seven stages of a move, as it ran."""

    migration = models.ForeignKey(
        Migration, on_delete=models.CASCADE, related_name="stages"
    )
    stage = models.CharField(max_length=30, choices=STAGE_CHOICES)
    number = models.PositiveSmallIntegerField()
    outcome = models.CharField(
        max_length=10, choices=StageOutcome, default=StageOutcome.RUNNING
    )
    started_t = models.FloatField(help_text="Simulated seconds since the move began.")
    duration_s = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    team_path = "migration__cluster__team"

    class Meta:
        ordering = ["migration", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["migration", "stage"], name="one_row_per_migration_stage"
            )
        ]

    def __str__(self) -> str:
        return f"{self.migration_id}: {self.get_stage_display()}"


class MigrationPass(models.Model):
    """One pre-copy pass of the memory transfer."""

    migration = models.ForeignKey(
        Migration, on_delete=models.CASCADE, related_name="passes_done"
    )
    pass_no = models.PositiveSmallIntegerField()
    pages_sent = models.BigIntegerField()
    pages_dirtied = models.BigIntegerField()
    zero_pages = models.BigIntegerField()
    bytes = models.BigIntegerField()
    duration_s = models.FloatField()
    dirty_rate = models.FloatField(help_text="Pages dirtied per simulated second.")
    expected_downtime_s = models.FloatField()
    remaining_dirty_pages = models.BigIntegerField()
    t = models.FloatField(help_text="Simulated seconds since the move began.")
    throttle_pct = models.FloatField(
        default=0.0, help_text="The guest's throttle during the pass (%)."
    )
    downtime_limit_ms = models.FloatField(
        null=True,
        blank=True,
        help_text="The downtime limit the policy's decision after the pass used.",
    )

    objects = RestrictedQuerySet.as_manager()

    team_path = "migration__cluster__team"

    class Meta:
        ordering = ["migration", "pass_no"]
        constraints = [
            models.UniqueConstraint(
                fields=["migration", "pass_no"], name="one_row_per_migration_pass"
            )
        ]

    def __str__(self) -> str:
        return f"{self.migration_id}: pass {self.pass_no}"


class MigrationEvent(models.Model):
    """An event of a move as it was sent to viewers, numbered from 1."""

    migration = models.ForeignKey(
        Migration, on_delete=models.CASCADE, related_name="events"
    )
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=30)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    event_id = models.PositiveIntegerField(
        "event ID",
        null=True,
        blank=True,
        choices=[(e.value, f"{e.value} {TITLES[e]}") for e in EventId],
        help_text="The ID Hyper-V's VMMS-Admin log would give this event, if any.",
    )

    objects = RestrictedQuerySet.as_manager()

    team_path = "migration__cluster__team"

    class Meta:
        ordering = ["migration", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["migration", "seq"], name="one_event_per_migration_seq"
            )
        ]
        indexes = [models.Index(fields=["event_id"], name="migration_event_id_idx")]

    def __str__(self) -> str:
        return f"{self.migration_id}#{self.seq} {self.kind}"


class Replay(models.Model):
    """A what-if of a finished move: the same VM, workload and seed, re-run as a
    pure simulation with other settings. It touches no inventory."""

    migration = models.ForeignKey(
        Migration, on_delete=models.CASCADE, related_name="replays"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The settings it ran with (each the move's own unless changed).
    policy = models.CharField(max_length=20, choices=MigrationPolicy)
    performance_option = models.CharField(max_length=20, choices=PerformanceOption)
    link_bandwidth_mbps = models.PositiveIntegerField()
    downtime_limit_ms = models.PositiveIntegerField()
    # Run by a worker (a simulation takes 0.4–1.8 s here: too long for a request).
    state = models.CharField(
        max_length=10, choices=ReplayState, default=ReplayState.QUEUED
    )
    error = models.TextField(blank=True)
    # What it did: the engine's result and its passes, as the move records them.
    result = models.JSONField(default=dict, blank=True)
    passes = models.JSONField(default=list, blank=True)
    wall_time_s = models.FloatField(
        null=True, blank=True, help_text="This machine's time to run the simulation."
    )

    objects = RestrictedQuerySet.as_manager()

    team_path = "migration__cluster__team"

    class Meta:
        ordering = ["migration", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.migration_id}: replay {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("moves:replay", args=[self.migration_id, self.pk])
