"""The drain's confirmation (its timed plan) and the drains' record."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hvweb.inventory import access
from hvweb.inventory.choices import Priority
from hvweb.inventory.models import Host
from hvweb.moves.drain import DrainRefused

from .compare import compare
from .models import DrainRecord
from .plan import plan_drain

#: Drains listed on one page.
LISTED = 50


@login_required
@require_GET
def drain_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Pause and drain" asks first: what will happen, on the clock."""
    host = access.get_to_act_on(
        Host.objects.select_related("cluster"),
        request.user,
        "operate",
        "Draining hosts needs the operator or administrator role.",
        pk=pk,
    )
    context = {"host": host, "plan": None, "refused": None}
    try:
        context["plan"] = plan_drain(host)
    except DrainRefused as refused:
        context["refused"] = refused
    threshold = host.cluster.move_type_threshold
    labels = dict(Priority.choices)
    context["threshold_label"] = labels.get(threshold, str(threshold))
    return render(request, "maintenance/drain_plan.html", context)


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
