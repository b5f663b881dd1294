"""The drain's confirmation (its timed plan) and the drains' record."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from hvweb.inventory import access
from hvweb.inventory.choices import Priority
from hvweb.inventory.models import Host
from hvweb.moves.drain import DrainRefused

from .compare import compare
from .failback import plan_failback, resume_with_failback
from .models import DrainRecord
from .plan import plan_drain

#: Drains listed on one page.
LISTED = 50


def _operated(request: HttpRequest, pk: int) -> Host:
    return access.get_to_act_on(
        Host.objects.select_related("cluster"),
        request.user,
        "operate",
        "Draining and resuming hosts needs the operator or administrator role.",
        pk=pk,
    )


def _confirm(request: HttpRequest, host: Host, planner, **context) -> HttpResponse:
    context |= {"host": host, "plan": None, "refused": None}
    try:
        context["plan"] = planner(host)
    except DrainRefused as refused:
        context["refused"] = refused
    threshold = host.cluster.move_type_threshold
    labels = dict(Priority.choices)
    context["threshold_label"] = labels.get(threshold, str(threshold))
    return render(request, "maintenance/drain_plan.html", context)


@login_required
@require_GET
def drain_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Pause and drain" asks first: what will happen, on the clock."""
    host = _operated(request, pk)
    return _confirm(
        request, host, plan_drain,
        headline=f"Pause and drain {host.name}?",
        action_url=reverse("moves:host-drain", args=[host.pk]),
        confirm_id="drain-confirm", confirm_label="Pause and drain",
    )  # fmt: skip


@login_required
@require_GET
def failback_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Resume and fail back" asks first: which VMs come back, on the clock."""
    host = _operated(request, pk)
    return _confirm(
        request, host, plan_failback,
        headline=f"Resume {host.name} and fail back?",
        action_url=reverse("maintenance:failback", args=[host.pk]),
        confirm_id="failback-confirm", confirm_label="Resume and fail back now",
    )  # fmt: skip


@login_required
@require_POST
def failback(request: HttpRequest, pk: int) -> HttpResponse:
    """Resume the host and bring back the VMs its last drain moved away."""
    host = _operated(request, pk)
    try:
        outcome = resume_with_failback(host, request.user)
    except DrainRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}", extra_tags="at-drain")
    else:
        stays = {str(s) for s in outcome.stayed}
        for line in outcome.lines():
            level = messages.WARNING if line in stays else messages.SUCCESS
            messages.add_message(request, level, line, extra_tags="at-drain")
    return redirect(host)


@login_required
@require_GET
def drain_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = access.get_visible_or_404(
        DrainRecord.objects.select_related("host", "requested_by"),
        request.user,
        pk=pk,
    )
    return render(
        request,
        "maintenance/drain_detail.html",
        {"record": record, "comparison": compare(record)},
    )


@login_required
@require_GET
def drain_list(request: HttpRequest) -> HttpResponse:
    records = DrainRecord.objects.restrict(request.user).select_related(
        "host", "requested_by"
    )[:LISTED]
    return render(
        request,
        "maintenance/drain_list.html",
        {"comparisons": [compare(r) for r in records]},
    )
