"""The drain's confirmation (its timed plan) and the drains' record."""

from __future__ import annotations

from zoneinfo import available_timezones

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from hvweb.inventory import access
from hvweb.inventory.choices import HostState, Priority
from hvweb.inventory.models import Cluster, Host
from hvweb.moves.drain import DrainRefused
from hvweb.moves.views import operated_host, report_drain

from .balance import DEFAULT_LEVEL_PCT, balance_cluster, plan_balance
from .compare import compare
from .failback import plan_failback, resume_with_failback
from .models import DrainRecord, MaintenanceRun
from .plan import plan_drain
from .rolling import (
    RunRefused,
    cancel_run,
    parse_moment,
    plan_run,
    shown,
    start_run,
)

#: Drains listed on one page.
LISTED = 50


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
    host = operated_host(request, pk)
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
    host = operated_host(request, pk)
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
    host = operated_host(request, pk)
    report_drain(request, lambda: resume_with_failback(host, request.user))
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


# --- Rolling maintenance -------------------------------------------------------------


@login_required
def run_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Choose hosts and a hold, see the run's plan and N-1 check, start it."""
    cluster = access.get_to_act_on(
        Cluster.objects.all(),
        request.user,
        "operate",
        "Rolling maintenance needs the operator or administrator role.",
        pk=pk,
    )
    hosts = list(cluster.hosts.order_by("name"))
    data = request.POST if request.method == "POST" else request.GET
    errors: list[str] = []
    chosen = [h.pk for h in hosts if h.state != HostState.DOWN]
    hold_s = 300.0
    if "hosts" in data:
        try:
            chosen = [int(v) for v in data.getlist("hosts")]
        except ValueError:
            errors.append("hosts: give host ids.")
    if data.get("hold_s"):
        try:
            hold_s = float(data["hold_s"])
        except ValueError:
            errors.append("hold_s: give the maintenance period in seconds.")
    drain_only = data.get("drain_only") == "on"
    zone = data.get("time_zone") or "UTC"
    window = {"start_at": data.get("start_at", ""), "end_by": data.get("end_by", "")}
    plan = None
    if not errors:
        try:
            moments = {k: parse_moment(k, v, zone) for k, v in window.items()}
            if request.method == "POST":
                run = start_run(
                    cluster, request.user, chosen, hold_s=hold_s,
                    drain_only=drain_only, time_zone=zone, **moments,
                )  # fmt: skip
                return redirect(run)
            plan = plan_run(cluster, chosen, hold_s=hold_s, drain_only=drain_only)
        except RunRefused as refused:
            errors.append(f"{refused.code}: {refused.message}")
        except ValidationError as bad:
            errors += [f"{k}: {' '.join(v)}" for k, v in bad.message_dict.items()]
    context = {
        "cluster": cluster, "hosts": hosts, "chosen": chosen, "hold_s": hold_s,
        "plan": plan, "errors": errors, "drain_only": drain_only, "zone": zone,
        "zones": sorted(available_timezones()), **window,
    }  # fmt: skip
    return render(request, "maintenance/run_new.html", context)


@login_required
@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = access.get_visible_or_404(
        MaintenanceRun.objects.select_related("cluster", "requested_by"),
        request.user,
        pk=pk,
    )
    names = dict(Host.objects.filter(pk__in=run.hosts).values_list("pk", "name"))
    planned = {s["host_id"]: s for s in run.plan.get("steps", [])}
    steps = []
    for i, host_id in enumerate(run.hosts):
        if i < run.step:
            status = "done: resumed, its VMs back"
        elif i == run.step and run.active:
            status = run.get_phase_display()
        elif i == run.step and run.state == MaintenanceRun.FAILED:
            status = "stopped here"
        else:
            status = "not started"
        steps.append(
            {
                "host": names.get(host_id, host_id),
                "planned": planned.get(host_id, {}),
                "status": status,
            }
        )
    records = run.records.select_related("host", "requested_by").order_by(
        "created_at", "pk"
    )
    current = names.get(run.hosts[run.step]) if run.step < len(run.hosts) else ""
    # The moves' state colours: a pending run looks like a queued move.
    state_class = {"pending": "queued"}.get(run.state, run.state)
    context = {
        "run": run,
        "start_at": shown(run.start_at, run.time_zone) if run.start_at else "",
        "end_by": shown(run.end_by, run.time_zone) if run.end_by else "",
        "steps": steps,
        "comparisons": [compare(r) for r in records],
        "current_host": current,
        "state_class": state_class,
        "may_operate": access.may(request.user, "operate", run),
    }
    return render(request, "maintenance/run_detail.html", context)


@login_required
@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = access.get_to_act_on(
        MaintenanceRun.objects.all(),
        request.user,
        "operate",
        "Cancelling a maintenance run needs the operator or administrator role.",
        pk=pk,
    )
    try:
        run = cancel_run(run, request.user.get_username())
    except RunRefused as refused:
        messages.error(request, f"{refused.code}: {refused.message}")
    return redirect(run)


@login_required
@require_GET
def run_list(request: HttpRequest) -> HttpResponse:
    """Runs and scheduled drains the user may see, newest first."""
    runs = list(
        MaintenanceRun.objects.restrict(request.user).select_related(
            "cluster", "requested_by"
        )[:LISTED]
    )
    ids = {pk for run in runs for pk in run.hosts}
    names = dict(Host.objects.filter(pk__in=ids).values_list("pk", "name"))
    rows = [
        {
            "run": run,
            "hosts": ", ".join(names.get(pk, str(pk)) for pk in run.hosts),
            "start_at": shown(run.start_at, run.time_zone) if run.start_at else "",
            "end_by": shown(run.end_by, run.time_zone) if run.end_by else "",
            "state_class": {"pending": "queued"}.get(run.state, run.state),
        }
        for run in runs
    ]
    return render(request, "maintenance/run_list.html", {"rows": rows})


@login_required
def balance(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Balance cluster": the plan first, the moves on confirmation."""
    cluster = access.get_to_act_on(
        Cluster.objects.all(),
        request.user,
        "operate",
        "Balancing a cluster needs the operator or administrator role.",
        pk=pk,
    )
    data = request.POST if request.method == "POST" else request.GET
    level = data.get("level_pct") or DEFAULT_LEVEL_PCT
    errors: list[str] = []
    plan = None
    try:
        if request.method == "POST":
            done = balance_cluster(cluster, request.user, level)
            for line in done.lines():
                messages.success(request, line)
            return redirect(cluster)
        plan = plan_balance(cluster, level)
    except ValidationError as bad:
        errors += [f"{k}: {' '.join(v)}" for k, v in bad.message_dict.items()]
    context = {"cluster": cluster, "plan": plan, "level": level, "errors": errors}
    return render(request, "maintenance/balance.html", context)
