"""Pages to start, watch, cancel and look back on moves.

* The VM page's "Live migrate" form (:func:`move_form_context`): destinations
  ranked, ready hosts first, then by free memory; blocked hosts say why; the
  engine's prediction (passes, total time, downtime) before the operator
  confirms, refreshed by :func:`vm_prediction` as the options change.
* The migration page, live through ``/ws/migrations/<id>/`` and the same for a
  move that ended long ago.
* The history, filterable, with a CSV export of the same rows.

Refusals are shown next to the control that caused them: their messages carry
an ``at-<control>`` tag that the templates place beside it.
"""

from __future__ import annotations

import csv

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from hvweb.inventory import access
from hvweb.inventory.choices import PerformanceOption
from hvweb.inventory.models import Cluster, Host, VirtualMachine
from migrator.predict import Prediction, predict
from migrator.stages import Stage

from .choices import MigrationState
from .drain import DrainRefused, drain_host, resume_host
from .models import Migration
from .runner import build_spec
from .services import (
    CancelRefused,
    MigrationRefused,
    MoveOptions,
    cancel_migration,
    ranked_destinations,
    start_migration,
)
from .snapshot import migration_snapshot

DEFAULT_DOWNTIME_LIMIT_MS = 300

# --- The "Live migrate" form on the VM page --------------------------------------


def prediction_dict(prediction: Prediction, speed: float) -> dict:
    return {
        **prediction.to_dict(),
        "speed": speed,
        "wall_time_s": prediction.total_time_s / speed if speed > 0 else None,
    }


def _predict(vm: VirtualMachine, options: MoveOptions) -> Prediction:
    return predict(
        build_spec(
            vm,
            vm.host,
            vm.host.cluster,
            performance_option=options.performance_option,
            downtime_limit_ms=options.downtime_limit_ms,
        )
    )


def move_form_context(request: HttpRequest, vm: VirtualMachine, may_operate: bool):
    """What the VM page needs for its "Live migrate" form (nothing for viewers)."""
    if not may_operate:
        return {}
    cluster = vm.host.cluster
    options = MoveOptions.parse(
        cluster,
        performance_option=cluster.performance_option,
        downtime_limit_ms=DEFAULT_DOWNTIME_LIMIT_MS,
        speed=cluster.simulation_speed,
    )
    destinations = ranked_destinations(vm)
    return {
        "destinations": destinations,
        "can_start": any(d.selectable for d in destinations),
        "move_options": options,
        "performance_options": PerformanceOption.choices,
        "prediction": prediction_dict(_predict(vm, options), options.speed),
    }


@login_required
@require_GET
def vm_prediction(request: HttpRequest, pk: int) -> JsonResponse:
    """The engine's prediction for moving the VM with the given options (JSON)."""
    vm = access.get_visible_or_404(
        VirtualMachine.objects.select_related("host__cluster"), request.user, pk=pk
    )
    try:
        options = MoveOptions.parse(
            vm.host.cluster,
            **{
                name: request.GET[name]
                for name in ("performance_option", "downtime_limit_ms", "speed")
                if request.GET.get(name, "") != ""
            },
        )
    except ValidationError as exc:
        return JsonResponse({"errors": exc.message_dict}, status=400)
    return JsonResponse(prediction_dict(_predict(vm, options), options.speed))


@login_required
@require_POST
def migrate_vm(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a move of the VM to the posted destination (operators)."""
    vm = access.get_visible_or_404(
        VirtualMachine.objects.select_related("host__cluster"), request.user, pk=pk
    )
    if not access.may(request.user, "operate", vm):
        raise PermissionDenied(
            "Starting a live migration needs the operator or administrator role in "
            "this cluster's team."
        )
    destination = (
        access.restrict(Host.objects.all(), request.user)
        .filter(pk=request.POST.get("destination") or None)
        .first()
    )
    if destination is None:
        messages.error(
            request,
            "destination: choose a host of this VM's cluster.",
            extra_tags="at-migrate",
        )
        return redirect(vm)
    options = {
        name: request.POST[name]
        for name in ("performance_option", "downtime_limit_ms", "speed")
        if request.POST.get(name, "") != ""
    }
    try:
        migration = start_migration(vm, destination, request.user, **options)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            messages.error(
                request, f"{field}: {' '.join(errors)}", extra_tags="at-migrate"
            )
        return redirect(vm)
    except MigrationRefused as exc:
        for failure in exc.failures:
            messages.error(
                request, f"{failure.code}: {failure.message}", extra_tags="at-migrate"
            )
        return redirect(vm)
    return redirect(migration)


# --- The migration page ----------------------------------------------------------


@login_required
def migration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    migration = access.get_visible_or_404(
        Migration.objects.select_related(
            "vm", "cluster", "source", "destination", "requested_by"
        ),
        request.user,
        pk=pk,
    )
    snapshot = migration_snapshot(migration.pk)
    progress = migration.progress or {}
    stages_done = {s["stage"]: s for s in snapshot["stages"]}
    timeline = [
        {
            "stage": stage.value,
            "number": stage.number,
            "label": stage.label,
            "cancellable": stage.cancellable,
            "row": stages_done.get(stage.value),
        }
        for stage in Stage
    ]
    return render(
        request,
        "moves/migration_detail.html",
        {
            "migration": migration,
            "timeline": timeline,
            "passes": snapshot["passes"],
            "log": snapshot["log"][-200:],
            "predicted": migration.predicted or None,
            "bytes_shown": max(
                migration.bytes_sent or 0, progress.get("bytes_sent") or 0
            ),
            "pass_shown": migration.passes or progress.get("pass_no"),
            "stages_json": [
                {
                    "stage": t["stage"],
                    "number": t["number"],
                    "label": t["label"],
                    "cancellable": t["cancellable"],
                }
                for t in timeline
            ],  # fmt: skip
            "may_operate": access.may(request.user, "operate", migration),
        },
    )


@login_required
@require_POST
def migration_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    migration = access.get_visible_or_404(Migration.objects.all(), request.user, pk=pk)
    if not access.may(request.user, "operate", migration):
        raise PermissionDenied(
            "Cancelling a live migration needs the operator or administrator role."
        )
    try:
        cancel_migration(migration, request.user)
    except CancelRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}", extra_tags="at-cancel")
    return redirect(migration)


# --- Draining a host ---------------------------------------------------------------


def _operated_host(request: HttpRequest, pk: int) -> Host:
    host = access.get_visible_or_404(Host.objects.all(), request.user, pk=pk)
    if not access.may(request.user, "operate", host):
        raise PermissionDenied(
            "Draining and resuming hosts needs the operator or administrator role."
        )
    return host


@login_required
@require_POST
def host_drain(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause the host and start moving its running VMs away (the page's button)."""
    host = _operated_host(request, pk)
    try:
        outcome = drain_host(host, request.user)
    except DrainRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}", extra_tags="at-drain")
    else:
        stays = {str(s) for s in outcome.stayed}
        for line in outcome.lines():
            level = messages.WARNING if line in stays else messages.SUCCESS
            messages.add_message(request, level, line, extra_tags="at-drain")
    return redirect(host)


@login_required
@require_POST
def host_resume(request: HttpRequest, pk: int) -> HttpResponse:
    host = _operated_host(request, pk)
    try:
        resume_host(host, request.user)
    except DrainRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}", extra_tags="at-drain")
    return redirect(host)


# --- History ---------------------------------------------------------------------


class HistoryFilter(forms.Form):
    """The history's filters; every one optional, each checked where it enters."""

    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.none(), required=False, empty_label="Any cluster"
    )
    vm = forms.CharField(
        label="VM", required=False, max_length=100, help_text="Name contains"
    )
    state = forms.ChoiceField(
        choices=[("", "Any state"), *MigrationState.choices], required=False
    )
    user = forms.CharField(label="Requested by", required=False, max_length=150)
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cluster"].queryset = access.restrict(Cluster.objects.all(), user)

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "must be on or after the From date.")
        return data

    def apply(self, queryset):
        data = self.cleaned_data
        if data.get("cluster"):
            queryset = queryset.filter(cluster=data["cluster"])
        if data.get("vm"):
            queryset = queryset.filter(vm__name__icontains=data["vm"])
        if data.get("state"):
            queryset = queryset.filter(state=data["state"])
        if data.get("user"):
            name = data["user"]
            queryset = queryset.filter(
                **{f"requested_by__{get_user_model().USERNAME_FIELD}__iexact": name}
            )
        if data.get("since"):
            queryset = queryset.filter(created_at__date__gte=data["since"])
        if data.get("until"):
            queryset = queryset.filter(created_at__date__lte=data["until"])
        return queryset


def _history(request: HttpRequest):
    form = HistoryFilter(request.GET or None, user=request.user)
    queryset = access.restrict(
        Migration.objects.select_related(
            "vm", "cluster", "source", "destination", "requested_by"
        ),
        request.user,
    )
    if form.is_bound:
        queryset = form.apply(queryset) if form.is_valid() else queryset.none()
    return form, queryset


@login_required
def migration_list(request: HttpRequest) -> HttpResponse:
    form, queryset = _history(request)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "moves/migration_list.html",
        {
            "form": form,
            "page": page,
            "migrations": page.object_list,
            "query": query.urlencode(),
        },
    )


CSV_COLUMNS = [
    "id", "created_at", "started_at", "finished_at", "cluster", "vm", "source",
    "destination", "requested_by", "state", "stage", "failed_stage",
    "performance_option", "downtime_limit_ms", "speed", "passes", "stop_reason",
    "bytes_sent", "total_time_s", "downtime_s", "predicted_passes",
    "predicted_total_time_s", "predicted_downtime_s", "error_code", "error_message",
]  # fmt: skip


def _cell(value):
    """A CSV cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_row(m: Migration) -> list:
    predicted = m.predicted or {}
    return [_cell(v) for v in [
        m.pk, m.created_at.isoformat(),
        m.started_at.isoformat() if m.started_at else "",
        m.finished_at.isoformat() if m.finished_at else "",
        m.cluster.name, m.vm.name, m.source.name, m.destination.name,
        m.requested_by.get_username() if m.requested_by else "",
        m.state, m.stage, m.failed_stage, m.performance_option, m.downtime_limit_ms,
        m.speed, m.passes if m.passes is not None else "", m.stop_reason,
        m.bytes_sent if m.bytes_sent is not None else "",
        m.total_time_s if m.total_time_s is not None else "",
        m.downtime_s if m.downtime_s is not None else "",
        predicted.get("passes", ""), predicted.get("total_time_s", ""),
        predicted.get("downtime_s", ""), m.error_code, m.error_message,
    ]]  # fmt: skip


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def migration_export(request: HttpRequest) -> HttpResponse:
    """The history's rows (same filters) as CSV, streamed."""
    form, queryset = _history(request)
    if form.is_bound and not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for migration in queryset.iterator(chunk_size=500):
            yield writer.writerow(_csv_row(migration))

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="hvweb-migrations.csv"'
    return response
