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
