"""The record of each drain: the plan it was started on, and its moves."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from hvweb.inventory.models import Cluster, Host
from hvweb.inventory.querysets import RestrictedQuerySet
from hvweb.moves.models import Migration


class DrainRecord(models.Model):
    """One drain of a host, with the timed plan of the moves it started.

    ``plan`` is :meth:`hvweb.maintenance.plan.DrainPlan.to_dict` of the moves
    as admitted (each with its ``migration`` id); the moves themselves say
    what happened, so the drain is checked against its plan
    (:func:`hvweb.maintenance.compare.compare`).
    """

    DRAIN = "drain"
    FAILBACK = "failback"

    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="drains")
    kind = models.CharField(
        max_length=10,
        choices=[(DRAIN, "Drain"), (FAILBACK, "Failback")],
        default=DRAIN,
        help_text="A drain moves the host's VMs away; a failback brings back "
        "those its last drain moved.",
    )
    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, related_name="drains"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    plan = models.JSONField(default=dict)
    migrations = models.ManyToManyField(Migration, related_name="drains", blank=True)

    objects = RestrictedQuerySet.as_manager()

    team_path = "cluster__team"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{self.get_kind_display()} of {self.host} at {when}"

    def get_absolute_url(self) -> str:
        return reverse("maintenance:drain", args=[self.pk])


class MaintenanceRun(models.Model):
    """A rolling maintenance of some or all hosts of a cluster, one at a time.

    Cluster-Aware Updating's shape: for each host in turn, drain it, hold it
    for the maintenance period, resume it with failback, go on. The run's
    state lives here and is advanced by :mod:`hvweb.maintenance.rolling`
    (idempotently, from the beat and whenever one of its moves ends), so a
    worker that dies costs nothing but time.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STATES = [
        (PENDING, "Pending"),
        (RUNNING, "Running"),
        (SUCCEEDED, "Succeeded"),
        (FAILED, "Failed"),
        (CANCELLED, "Cancelled"),
    ]
    ACTIVE = (PENDING, RUNNING)

    # What a host goes through, in order.
    DRAIN = "drain"
    DRAINING = "draining"
    HOLDING = "holding"
    FAILBACK = "failback"
    FAILING_BACK = "failing_back"
    PHASES = [
        (DRAIN, "Draining"),
        (DRAINING, "Draining"),
        (HOLDING, "In maintenance"),
        (FAILBACK, "Failing back"),
        (FAILING_BACK, "Failing back"),
    ]

    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, related_name="maintenance_runs"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: The hosts' ids, in the order the run takes them.
    hosts = models.JSONField(default=list)
    hold_s = models.FloatField(
        default=300, help_text="The maintenance period each host is held paused."
    )
    #: Drain the hosts and stop (a scheduled drain): no hold, no failback.
    drain_only = models.BooleanField(default=False)
    #: The window: the run starts at ``start_at`` (the beat's next tick) and
    #: starts no move after ``end_by``; stored in UTC, shown in ``time_zone``.
    start_at = models.DateTimeField(null=True, blank=True)
    end_by = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    #: The move options of every move (performance option, limit, speed).
    options = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=STATES, default=PENDING)
    #: Index into ``hosts`` of the host in hand.
    step = models.PositiveIntegerField(default=0)
    phase = models.CharField(max_length=12, choices=PHASES, default=DRAIN)
    phase_started_at = models.DateTimeField(null=True, blank=True)
    #: Drains or failbacks of the host in hand that were lost with a worker.
    attempts = models.PositiveSmallIntegerField(default=0)
    current = models.ForeignKey(
        DrainRecord, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    records = models.ManyToManyField(DrainRecord, related_name="runs", blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    #: The run's timed plan as shown before it started.
    plan = models.JSONField(default=dict, blank=True)
    #: What happened, one line an event.
    journal = models.JSONField(default=list, blank=True)
    #: The Celery queue of the installation that started it: its ticks and
    #: moves go there (installations sharing a Redis keep to their own runs).
    queue = models.CharField(max_length=100, blank=True)
    #: Bumped by every step, so two advancers never take the same one.
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    team_path = "cluster__team"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"],
                condition=models.Q(state__in=("pending", "running")),
                name="one_active_maintenance_run_per_cluster",
                violation_error_message="This cluster already has a maintenance "
                "run under way.",
            )
        ]

    def __str__(self) -> str:
        return f"Maintenance of {self.cluster} #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("maintenance:run", args=[self.pk])

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE
