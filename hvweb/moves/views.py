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
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from hvweb.api.serializers import FlatMigrationSerializer
from hvweb.core.filtersets import parse_whole_number
from hvweb.inventory import access
from hvweb.inventory.choices import MigrationPolicy, PerformanceOption
from hvweb.inventory.models import Host, VirtualMachine
from hvweb.observe import eventlog
from migrator.policy import NOT_CONVERGING
from migrator.predict import Prediction, predict
from migrator.stages import Stage

from . import options as bounds
from .advice import vm_advice
from .drain import DrainRefused, resume_host
from .filtersets import PAGE_FILTERS, MigrationFilterSet
from .models import Migration, MigrationEvent
from .options import MoveOptions
from .replay import (
    REPLAY_SETTINGS,
    ReplayRefused,
    base_spec,
    link_mbps,
    original_passes,
    request_replay,
)
from .runner import build_spec
from .services import (
    CancelRefused,
    MigrationRefused,
    cancel_migration,
    ranked_destinations,
    start_migration,
)
from .snapshot import migration_snapshot

# --- The "Live migrate" form on the VM page --------------------------------------

#: The form's option fields, as MoveOptions takes them.
MOVE_FIELDS = ("performance_option", "downtime_limit_ms", "speed", "policy")


def prediction_dict(prediction: Prediction, speed: float) -> dict:
    return {
        **prediction.to_dict(),
        "speed": speed,
        "wall_time_s": prediction.total_time_s / speed if speed > 0 else None,
    }


def _spec(vm: VirtualMachine, options: MoveOptions):
    return build_spec(
        vm,
        vm.host,
        vm.host.cluster,
        performance_option=options.performance_option,
        downtime_limit_ms=options.downtime_limit_ms,
        policy=options.policy,
    )


def _predict(vm: VirtualMachine, options: MoveOptions) -> Prediction:
    return predict(_spec(vm, options))


def _options_asked(data) -> dict[str, str]:
    """The move options a form or query sent; "as fast as the machine can"
    (``pace=unpaced``) is speed 0, whatever the speed box says."""
    asked = {
        name: data[name]
        for name in MOVE_FIELDS
        if data.get(name, "") != ""
    }
    if data.get("pace") == "unpaced":
        asked["speed"] = "0"
    return asked


def move_form_context(request: HttpRequest, vm: VirtualMachine, may_operate: bool):
    """What the VM page needs for its "Live migrate" form (nothing for viewers)."""
    if not may_operate:
        return {}
    cluster = vm.host.cluster
    options = MoveOptions.parse(cluster)  # the cluster's settings, the defaults
    destinations = ranked_destinations(vm)
    can_start = any(d.selectable for d in destinations)
    spec = _spec(vm, options)
    return {
        "destinations": destinations,
        "shared_failures": destinations[0].shared if destinations else (),
        "can_start": can_start,
        "move_options": options,
        "option_bounds": {
            "max_downtime_limit_ms": bounds.MAX_DOWNTIME_LIMIT_MS,
            "min_speed": bounds.MIN_SPEED,
            "max_speed": bounds.MAX_SPEED,
        },
        "pass_cap": spec.pass_cap,
        "performance_options": PerformanceOption.choices,
        "policies": MigrationPolicy.choices,
        # No figures for a move that cannot happen.
        "prediction": prediction_dict(predict(spec), options.speed)
        if can_start
        else None,
    }


def advice_context(vm: VirtualMachine, destinations=None) -> dict:
    """The VM page's advice table, and for operators the host the recommended
    move would go to (the best selectable destination, if any)."""
    advice = vm_advice(vm)
    target = next((d for d in destinations or () if d.selectable), None)
    return {
        "advice": advice,
        "advice_rows": advice.rows,
        "advice_recommended": advice.advice.recommended,
        "advice_destination": target,
    }


@login_required
@require_GET
def vm_prediction(request: HttpRequest, pk: int) -> JsonResponse:
    """The engine's prediction for moving the VM with the given options (JSON)."""
    vm = access.get_visible_or_404(
        VirtualMachine.objects.select_related("host__cluster"), request.user, pk=pk
    )
    try:
        options = MoveOptions.parse(vm.host.cluster, **_options_asked(request.GET))
    except ValidationError as exc:
        return JsonResponse({"errors": exc.message_dict}, status=400)
    return JsonResponse(prediction_dict(_predict(vm, options), options.speed))


@login_required
@require_POST
def migrate_vm(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a move of the VM to the posted destination (operators)."""
    vm = access.get_to_act_on(
        VirtualMachine.objects.select_related("host__cluster"),
        request.user,
        "operate",
        "Starting a live migration needs the operator or administrator role in "
        "this cluster's team.",
        pk=pk,
    )
    raw = request.POST.get("destination", "")
    try:
        destination_id = parse_whole_number(raw) if raw else None
    except ValidationError as exc:
        # Only a hand-made request sends "abc" or "1.5": the form offers a list.
        return HttpResponseBadRequest(
            f"destination: {' '.join(exc.messages)}", content_type="text/plain"
        )
    destination = (
        Host.objects.restrict(request.user).filter(pk=destination_id).first()
        if destination_id is not None
        else None
    )
    if destination is None:
        messages.error(
            request,
            "destination: choose a host of this VM's cluster.",
            extra_tags="at-migrate",
        )
        return redirect(vm)
    options = _options_asked(request.POST)
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


def log_with_gaps(log: list[dict]) -> list[dict]:
    """The event log as the page lists it: each entry with ``skipped``, the
    progress updates (not listed) between it and the entry before."""
    shown, before = [], 0
    for entry in log:
        shown.append({**entry, "skipped": max(0, entry["seq"] - before - 1)})
        before = entry["seq"]
    return shown


@login_required
def migration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    migration = access.get_visible_or_404(
        Migration.objects.select_related(
            "vm", "cluster__team", "source", "destination", "requested_by"
        ),
        request.user,
        pk=pk,
    )
    event_filter = EventIdForm(request.GET or None)
    if event_filter.is_bound and not event_filter.is_valid():
        status = 400
        only = None
    else:
        status = 200
        only = event_filter.is_bound and event_filter.cleaned_data["event_id"]
    snapshot = migration_snapshot(migration.pk)
    log = snapshot["log"]
    if only:
        log = [f for f in log if f.get("event_id") == only]
    progress = migration.progress or {}
    stages_done = {s["stage"]: s for s in snapshot["stages"]}
    timeline = [
        {
            "stage": stage.value,
            "number": stage.number,
            "label": stage.label,
            "row": stages_done.get(stage.value),
        }
        for stage in Stage
    ]
    stage = migration.failed_stage or migration.stage
    return render(
        request,
        "moves/migration_detail.html",
        {
            "migration": migration,
            "stage": Stage(stage) if stage else None,
            "timeline": timeline,
            "passes": snapshot["passes"],
            # Gaps count what is not listed: progress updates, or with a
            # filter by event ID every other event too, so none is claimed then.
            "log": (log_with_gaps(log) if not only else log)[-200:],
            "event_filter": event_filter,
            "event_id": only or "",
            "predicted": migration.predicted or None,
            "bytes_shown": max(
                migration.bytes_sent or 0, progress.get("bytes_sent") or 0
            ),
            "pass_shown": migration.passes or progress.get("pass_no"),
            "may_operate": access.may(request.user, "operate", migration),
            "not_converging": NOT_CONVERGING,
            "replays": migration.replays.all(),
            "replay_form": {
                "policies": MigrationPolicy.choices,
                "performance_options": PerformanceOption.choices,
                "link_bandwidth_mbps": link_mbps(base_spec(migration)),
                "max_downtime_limit_ms": bounds.MAX_DOWNTIME_LIMIT_MS,
            },
        },
        status=status,
    )


class EventIdForm(forms.Form):
    """The migration page's filter of its event log by Hyper-V event ID."""

    event_id = forms.TypedChoiceField(
        label="Hyper-V event ID",
        choices=[("", "Any event")]
        + list(MigrationEvent._meta.get_field("event_id").choices),
        coerce=int,
        required=False,
        empty_value=None,
    )


def _events_csv(events, filename: str) -> StreamingHttpResponse:
    """Events with a Hyper-V ID as Event Viewer's CSV, streamed."""
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(eventlog.COLUMNS)
        for row in eventlog.rows(eventlog.logged(events).iterator(chunk_size=500)):
            yield writer.writerow([_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def migration_events_export(request: HttpRequest, pk: int) -> HttpResponse:
    """One move's events with a Hyper-V ID, as Event Viewer would list them."""
    migration = access.get_visible_or_404(Migration.objects.all(), request.user, pk=pk)
    event_filter = EventIdForm(request.GET or None)
    if event_filter.is_bound and not event_filter.is_valid():
        return JsonResponse({"errors": event_filter.errors}, status=400)
    events = MigrationEvent.objects.filter(migration=migration)
    if event_filter.is_bound and event_filter.cleaned_data["event_id"]:
        events = events.filter(event_id=event_filter.cleaned_data["event_id"])
    return _events_csv(events, f"hvweb-migration-{migration.pk}-events.csv")


@login_required
@require_POST
def migration_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    migration = access.get_to_act_on(
        Migration.objects.all(),
        request.user,
        "operate",
        "Cancelling a live migration needs the operator or administrator role.",
        pk=pk,
    )
    try:
        cancel_migration(migration, request.user)
    except CancelRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}", extra_tags="at-cancel")
    return redirect(migration)


# --- What-if replays of a finished move ------------------------------------------


#: The replay's settings in the words of its page.
SETTING_LABELS = {
    "policy": "the policy",
    "performance_option": "the performance option",
    "link_bandwidth_mbps": "the link rate",
    "downtime_limit_ms": "the downtime limit",
}


def _side(label: str, source: dict, passes: list, settings: dict) -> dict:
    """One column of the side-by-side comparison."""
    return {
        "label": label,
        "outcome": "aborted" if source.get("aborted") else source.get("outcome"),
        "passes": source.get("passes"),
        "bytes_sent": source.get("bytes_sent"),
        "downtime_s": source.get("downtime_s"),
        "total_time_s": source.get("total_time_s"),
        "guest_slowdown_pct": source.get("guest_slowdown_pct"),
        "pass_rows": passes,
        **settings,
    }


@login_required
@require_POST
def replay_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Replay the move with the posted settings (operators); show the replay."""
    migration = access.get_to_act_on(
        Migration.objects.select_related("cluster"),
        request.user,
        "operate",
        "Replaying a move needs the operator or administrator role.",
        pk=pk,
    )
    asked = {
        name: request.POST[name]
        for name in REPLAY_SETTINGS
        if request.POST.get(name, "") != ""
    }
    try:
        replay = request_replay(migration, request.user, **asked)
    except ReplayRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}", extra_tags="at-replay")
        return redirect(migration)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            messages.error(
                request, f"{field}: {' '.join(errors)}", extra_tags="at-replay"
            )
        return redirect(migration)
    return redirect(replay)


@login_required
def replay_detail(request: HttpRequest, pk: int, replay_id: int) -> HttpResponse:
    """A replay side by side with the move it re-ran."""
    migration = access.get_visible_or_404(
        Migration.objects.select_related("vm", "cluster", "source", "destination"),
        request.user,
        pk=pk,
    )
    replay = get_object_or_404(migration.replays.all(), pk=replay_id)
    original = migration.result or {
        "outcome": migration.state,
        "passes": migration.passes,
        "bytes_sent": migration.bytes_sent,
        "downtime_s": migration.downtime_s,
        "total_time_s": migration.total_time_s,
    }
    own = {
        "policy": migration.policy,
        "performance_option": migration.performance_option,
        "link_bandwidth_mbps": link_mbps(base_spec(migration)),
        "downtime_limit_ms": migration.downtime_limit_ms,
    }
    mine = {name: getattr(replay, name) for name in REPLAY_SETTINGS}
    sides = [
        _side(
            f"Move #{migration.pk} as it ran", original, original_passes(migration), own
        ),
        _side(f"Replay #{replay.pk}", replay.result, replay.passes, mine),
    ]
    return render(
        request,
        "moves/replay.html",
        {
            "migration": migration,
            "replay": replay,
            "sides": sides,
            "changed": [
                label
                for name, label in SETTING_LABELS.items()
                if own[name] != mine[name]
            ],
            "replay_data": {
                "state": replay.state,
                "url": f"/api/migrations/{migration.pk}/replays/{replay.pk}/",
                "sides": [
                    {"label": s["label"], "passes": s["pass_rows"]} for s in sides
                ],
            },
        },
    )


# --- Draining a host ---------------------------------------------------------------


def operated_host(request: HttpRequest, pk: int) -> Host:
    """The host ``pk`` if the user may drain and resume it (else 404/403)."""
    return access.get_to_act_on(
        Host.objects.select_related("cluster"),
        request.user,
        "operate",
        "Draining and resuming hosts needs the operator or administrator role.",
        pk=pk,
    )


@login_required
@require_POST
def host_drain(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause the host and start moving its running VMs away (the page's button)."""
    from hvweb.maintenance.service import drain_and_record

    host = operated_host(request, pk)
    report_drain(request, lambda: drain_and_record(host, request.user)[0])
    return redirect(host)


def report_drain(request: HttpRequest, act) -> None:
    """Run a drain or failback (``act`` returns its outcome) and say on the
    host's page what moved, what stays, or why it was refused."""
    try:
        outcome = act()
    except DrainRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}", extra_tags="at-drain")
        return
    stays = {str(s) for s in outcome.stayed}
    for line in outcome.lines():
        level = messages.WARNING if line in stays else messages.SUCCESS
        messages.add_message(request, level, line, extra_tags="at-drain")


@login_required
@require_POST
def host_resume(request: HttpRequest, pk: int) -> HttpResponse:
    host = operated_host(request, pk)
    try:
        resume_host(host, request.user)
    except DrainRefused as exc:
        messages.error(request, f"{exc.code}: {exc.message}", extra_tags="at-drain")
    return redirect(host)


# --- History ---------------------------------------------------------------------


def _history(request: HttpRequest):
    """The history's filters (bound to what the request asks) and its rows."""
    # An HTML form sends every field, the empty ones too: those filter nothing.
    asked = {k: v for k, v in request.GET.items() if k != "page" and v != ""}
    filterset = MigrationFilterSet(
        asked or None,
        queryset=Migration.objects.select_related(
            "vm", "cluster", "source", "destination", "requested_by"
        ).restrict(request.user),
        request=request,
    )
    if filterset.is_bound and not filterset.is_valid():
        return filterset, filterset.queryset.none()
    return filterset, filterset.qs


@login_required
def migration_list(request: HttpRequest) -> HttpResponse:
    filterset, queryset = _history(request)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "moves/migration_list.html",
        {
            "form": filterset.form,
            "filtered": filterset.is_bound,
            "fields": [filterset.form[name] for name in PAGE_FILTERS],
            "page": page,
            "migrations": page.object_list,
            "query": query.urlencode(),
        },
    )


#: The record's fields (FlatMigrationSerializer) that hold JSON objects: a CSV
#: row leaves them out, but for the prediction's three figures.
_CSV_OBJECTS = ("faults", "progress", "predicted", "result")
_CSV_PREDICTED = ("passes", "total_time_s", "downtime_s")


def csv_columns() -> list[str]:
    """The CSV export's header: the move's record, flattened."""
    names = [n for n in FlatMigrationSerializer().fields if n not in _CSV_OBJECTS]
    return [*names, *(f"predicted_{key}" for key in _CSV_PREDICTED)]


def _cell(value):
    """A CSV cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_row(record: dict, columns: list[str]) -> list:
    """One move's flattened record as the cells under ``columns``."""
    predicted = record["predicted"] or {}
    flat = {
        **record,
        **{f"predicted_{key}": predicted.get(key) for key in _CSV_PREDICTED},
    }
    return [_cell(flat[name]) for name in columns]


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def migration_export(request: HttpRequest) -> HttpResponse:
    """The history's rows (same filters) as CSV, streamed."""
    filterset, queryset = _history(request)
    if filterset.is_bound and not filterset.is_valid():
        return JsonResponse({"errors": filterset.errors}, status=400)
    writer = csv.writer(_Echo())
    record = FlatMigrationSerializer()
    columns = csv_columns()

    def rows():
        yield writer.writerow(columns)
        for migration in queryset.iterator(chunk_size=500):
            yield writer.writerow(csv_row(record.to_representation(migration), columns))

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="hvweb-migrations.csv"'
    return response


@login_required
@require_GET
def history_events_export(request: HttpRequest) -> HttpResponse:
    """The history's moves (same filters) as Event Viewer would list their
    events; ``event_id`` also keeps only the events with that ID."""
    filterset, queryset = _history(request)
    if filterset.is_bound and not filterset.is_valid():
        return JsonResponse({"errors": filterset.errors}, status=400)
    events = MigrationEvent.objects.filter(migration__in=queryset.values("pk"))
    if filterset.is_bound and filterset.form.cleaned_data.get("event_id"):
        events = events.filter(event_id=filterset.form.cleaned_data["event_id"])
    return _events_csv(events, "hvweb-events.csv")
