"""A team's webhook endpoints and the record of every delivery to them."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from hvweb.inventory.choices import ColouredChoices, colours
from hvweb.inventory.models import Team
from hvweb.inventory.querysets import RestrictedQuerySet

from . import urlcheck

__all__ = ["EVENTS", "Delivery", "DeliveryStatus", "Endpoint"]

#: The events an endpoint can ask for.
EVENTS: dict[str, str] = {
    "migration.queued": "A move waits at a host's simultaneous-migration limit",
    "migration.started": "A worker began a move",
    "migration.succeeded": "A move ended with the VM on its destination",
    "migration.failed": "A move failed; the VM stayed on its source",
    "migration.cancelled": "A move was cancelled",
    "host.drain.completed": "A paused (drained) host has no move leaving it any more",
    "maintenance.started": "A rolling maintenance run began (its window opened)",
    "maintenance.host.completed": "A run is done with a host: drained, held and its "
    "VMs back (drained and left paused, for a drain-only run)",
    "maintenance.succeeded": "A run is done with every host",
    "maintenance.failed": "A run stopped on a host it could not drain or resume",
    "maintenance.cancelled": "A run was cancelled, or its window closed",
}
MIN_SECRET_LENGTH = 16


class Endpoint(models.Model):
    """A URL a team's administrator registered for some events."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField("URL", max_length=500)
    events = models.JSONField(help_text="The events to send (see EVENTS).")
    secret = models.CharField(
        max_length=128,
        blank=True,
        help_text=f"Signs each delivery; at least {MIN_SECRET_LENGTH} characters. "
        "Left empty, one is generated.",
    )
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    team_path = "team"

    class Meta:
        ordering = ["team", "url", "pk"]

    def __str__(self) -> str:
        return f"{self.team}: {self.url}"

    def save(self, *args, **kwargs) -> None:
        if not self.secret:
            self.secret = secrets.token_urlsafe(32)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("webhooks:endpoint", args=[self.pk])

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.url:
            try:
                urlcheck.check(self.url)
            except urlcheck.UnsafeURL as exc:
                errors["url"] = f"The URL {exc}"
        events = self.events
        if not isinstance(events, list) or not events:
            errors["events"] = "Choose at least one event."
        elif unknown := [e for e in events if e not in EVENTS]:
            errors["events"] = (
                f"Unknown event {unknown[0]!r}; known: {', '.join(EVENTS)}."
            )
        elif len(set(events)) != len(events):
            errors["events"] = "Name each event once."
        if self.secret and len(self.secret) < MIN_SECRET_LENGTH:
            errors["secret"] = (
                f"At least {MIN_SECRET_LENGTH} characters (or leave it empty)."
            )
        if errors:
            raise ValidationError(errors)

    def wants(self, event: str) -> bool:
        return self.active and event in (self.events or ())


@colours(pending="gray", retrying="orange", delivered="green", failed="red")
class DeliveryStatus(ColouredChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class Delivery(models.Model):
    """One event for one endpoint: what was sent, how often, and how it went."""

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40)
    #: What makes the event unique (a move's end, a host's drain): the same
    #: event reaching the fan-out twice is delivered once.
    key = models.CharField(max_length=120)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    team_path = "endpoint__team"

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "key"], name="one_delivery_per_endpoint_event"
            )
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint.url} ({self.status})"

    @property
    def status_colour(self) -> str:
        return DeliveryStatus.colour_of(self.status)
