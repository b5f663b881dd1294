"""Rolling maintenance of a cluster, host by host (Cluster-Aware Updating's shape).

:func:`start_run` refuses a run the cluster cannot carry (the N-1 memory check:
with any one chosen host out, the others must hold its running VMs), or one
while another runs in the cluster, and records the run with its timed plan.
:func:`advance` moves a run on, one step at a time, each step claimed by
bumping the run's ``version`` first so two advancers (the beat, a move's end,
a re-delivered task) never take the same step twice; every step is
idempotent on the database's state, so a worker that dies mid-run costs only
time: the next tick resumes where the run was. For each host in turn:

``drain`` → ``draining`` (its moves end) → ``holding`` (the maintenance
period) → ``failback`` → ``failing_back`` (the moves back end) → next host.

A move lost with its worker or its job before its switchover (``WORKER_LOST``
or ``JOB_LOST``, the VM still where it was) is taken again by a new drain or
failback of the same host (at most :data:`RETRIES` times); any other failure
stops the run with the host as it is (paused, if it was draining) and says
why. A cancel stops the run once the host in hand is resumed and its VMs are
back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from hvweb.core.locking import ROW_ONLY, locked
from hvweb.inventory.choices import HostState
from hvweb.inventory.models import Cluster, Host
from hvweb.moves import capacity
from hvweb.moves.choices import MigrationState
from hvweb.moves.drain import DrainRefused
from hvweb.moves.options import MoveOptions
from migrator.units import format_span

from .failback import resume_with_failback, returning
from .models import DrainRecord, MaintenanceRun
from .plan import plan_drain
from .service import drain_and_record

__all__ = [
    "RETRIES",
    "own_queue",
    "RunRefused",
    "advance",
    "cancel_run",
    "n_minus_one",
    "plan_run",
    "start_run",
]

log = logging.getLogger(__name__)

#: Drains or failbacks of one host taken again after moves lost with a worker.
RETRIES = 3
#: How a move is lost without a failure of its own: its worker died
#: (``WORKER_LOST``) or the broker lost its job, or the worker that fetched it
#: died at once (``JOB_LOST``). Before the switchover the VM never left.
LOST = ("WORKER_LOST", "JOB_LOST")
#: The task that advances one run (``hvweb.maintenance.tasks``).
ADVANCE_TASK = "hvweb.advance_maintenance"
#: Sent inside a step's transaction for what the step did: ``event`` is
#: "started", "host.completed" (``host_id`` the host) or the state it ended in
#: ("succeeded", "failed", "cancelled"); ``key`` names that occurrence once.
#: The webhooks listen (the run knows nothing of them).
run_event = Signal()


class RunRefused(Exception):
    """The run cannot start as asked; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _hosts(cluster: Cluster, host_ids: Iterable[int] | None) -> list[Host]:
    every = list(cluster.hosts.order_by("name"))
    if host_ids is None:
        return [h for h in every if h.state != HostState.DOWN]
    by_id = {h.pk: h for h in every}
    chosen = []
    for pk in host_ids:
        if pk not in by_id:
            raise RunRefused("HOST_NOT_IN_CLUSTER", f"host {pk} is not a host of "
                             f"{cluster.name}.")  # fmt: skip
        if by_id[pk] in chosen:
            raise RunRefused("HOST_TWICE", f"{by_id[pk].name} is chosen twice.")
        chosen.append(by_id[pk])
    return chosen


def parse_moment(field: str, text: str | None, zone: str):
    """``text`` (ISO 8601, ``2026-12-01 02:00`` or with an offset) as an aware
    moment; one without an offset is read in the operator's ``zone``."""
    from datetime import datetime

    if text in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            {field: ["Give a date and time like 2026-12-01 02:00 (ISO 8601)."]}
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone_of(zone))
    return moment


def n_minus_one(
    cluster: Cluster, hosts: Iterable[Host], *, together: bool = False
) -> list[str]:
    """Why the cluster cannot carry its running VMs with one of ``hosts`` out
    (``together``: with all of them out at once, as a drain that leaves them
    paused does).

    For each chosen host: the memory its VMs hold (running and paused, as
    :mod:`hvweb.moves.capacity` counts it) against the free memory of the
    cluster's other hosts that are up (memory less what is held and reserved
    there). Empty when every host can be taken out in turn. A sum, not a
    packing: a VM bigger than any one host's free memory is the drain's to
    refuse, by name.
    """
    load = capacity.load(cluster)
    hosts = list(hosts)
    problems = []

    def free_on(others) -> int:
        return sum(
            max(0, h.memory_mib - load.loads[h.pk].used_mib
                - load.loads[h.pk].reserved_mib)
            for h in others
        )  # fmt: skip

    if together and len(hosts) > 1:
        out = {h.pk for h in hosts}
        need = sum(load.loads[pk].used_mib for pk in out)
        others = [h for h in load.hosts.values()
                  if h.pk not in out and h.state == HostState.UP]  # fmt: skip
        free = free_on(others)
        if need > free:
            names = ", ".join(h.name for h in others) or "no other host that is up"
            problems.append(
                f"{', '.join(h.name for h in hosts)} out together: their VMs hold "
                f"{need:,} MiB and the others ({names}) have {free:,} MiB free."
            )
        return problems
    for host in hosts:
        need = load.loads[host.pk].used_mib
        others = [h for h in load.hosts.values()
                  if h.pk != host.pk and h.state == HostState.UP]  # fmt: skip
        free = sum(
            max(0, h.memory_mib - load.loads[h.pk].used_mib
                - load.loads[h.pk].reserved_mib)
            for h in others
        )  # fmt: skip
        if need > free:
            names = ", ".join(h.name for h in others) or "no other host that is up"
            problems.append(
                f"{host.name} out: its VMs hold {need:,} MiB and the others "
                f"({names}) have {free:,} MiB free."
            )
    return problems


def plan_run(
    cluster: Cluster, host_ids: Iterable[int] | None = None, *, hold_s: float = 300,
    drain_only: bool = False, **options: Any,
) -> dict[str, Any]:  # fmt: skip
    """The run's timed plan: per host, its drain (as planned now), the hold and
    the failback (the same VMs back: about the drain's time), and the whole.

    Wall seconds at the moves' speed; unpaced moves (speed 0) are counted at
    their simulated time (what real hosts would take).
    """
    opts = MoveOptions.parse(cluster, **options)
    hosts = _hosts(cluster, host_ids)
    steps = []
    total = 0.0
    for host in hosts:
        plan = plan_drain(host, **options)
        scale = opts.speed if opts.speed > 0 else 1.0
        drain = plan.window_s / scale
        hold, back = (0.0, 0.0) if drain_only else (hold_s, drain)
        step_s = drain + hold + back
        total += step_s
        steps.append({
            "host": host.name, "host_id": host.pk, "summary": plan.summary,
            "vms": len(plan.moves), "stays": [str(s) for s in plan.stayed],
            "drain_s": drain, "hold_s": hold, "failback_s": back,
            "start_s": total - step_s, "end_s": total,
            "longest_blackout_s": plan.longest_blackout_s,
        })  # fmt: skip
    problems = n_minus_one(cluster, hosts, together=drain_only)
    return {
        "cluster": cluster.name,
        "hosts": [h.name for h in hosts],
        "hold_s": hold_s,
        "drain_only": drain_only,
        "speed": opts.speed,
        "steps": steps,
        "total_s": total,
        "summary": f"{cluster.name}: {len(hosts)} host{'s' if len(hosts) != 1 else ''}"
        f", about {format_span(total)}",
        "n_minus_one": problems,
    }


def start_run(
    cluster: Cluster, user=None, host_ids: Iterable[int] | None = None, *,
    hold_s: float = 300, drain_only: bool = False, start_at=None, end_by=None,
    time_zone: str = "UTC", **options: Any,
) -> MaintenanceRun:  # fmt: skip
    """Record a run over ``host_ids`` (default: every host that is up) and
    start it, or schedule it for ``start_at``; no move starts after
    ``end_by``. ``drain_only``: drain the hosts and stop (a scheduled drain).
    Raises RunRefused (the N-1 check, another run, a host down or not in the
    cluster, a bad window) or ValidationError (bad options)."""
    MoveOptions.parse(cluster, **options)  # refused before all
    if not 0 <= hold_s <= 7 * 24 * 3600:
        raise ValidationError({"hold_s": ["Give 0 s to 7 days."]})
    zone_of(time_zone)
    now = timezone.now()
    if end_by is not None and end_by <= max(now, start_at or now):
        raise ValidationError({"end_by": [
            "The window must end after it starts and after now."
        ]})  # fmt: skip
    hosts = _hosts(cluster, host_ids)
    if not hosts:
        raise RunRefused("NO_HOSTS", f"{cluster.name} has no host to maintain.")
    down = [h.name for h in hosts if h.state == HostState.DOWN]
    if down:
        raise RunRefused("HOST_DOWN", f"{', '.join(down)} is down: bring it up or "
                         "leave it out.")  # fmt: skip
    problems = n_minus_one(cluster, hosts, together=drain_only)
    if problems:
        raise RunRefused(
            "N_MINUS_ONE",
            "The cluster cannot carry its running VMs with one of these hosts "
            "out: " + " ".join(problems),
        )
    plan = plan_run(cluster, [h.pk for h in hosts], hold_s=hold_s,
                    drain_only=drain_only, **options)  # fmt: skip
    try:
        with transaction.atomic():
            run = MaintenanceRun.objects.create(
                cluster=cluster, requested_by=user, hosts=[h.pk for h in hosts],
                queue=own_queue(), drain_only=drain_only, start_at=start_at,
                end_by=end_by, time_zone=time_zone,
                hold_s=hold_s, options=dict(options), plan=plan,
                journal=[_line(
                    (f"Scheduled for {shown(start_at, time_zone)}"
                     if start_at and start_at > now else "Started")
                    + f" over {', '.join(plan['hosts'])}: {plan['summary']}"
                    + (f"; ends by {shown(end_by, time_zone)}" if end_by else "")
                    + ".")],
            )  # fmt: skip
            transaction.on_commit(lambda: kick(run.pk, run.queue))
    except IntegrityError:
        raise RunRefused(
            "RUN_ACTIVE", f"{cluster.name} already has a maintenance run under way."
        ) from None
    return run


def own_queue() -> str:
    """The Celery queue this process sends its tasks to."""
    from celery import current_app

    conf = current_app.conf
    return conf.get("CELERY_TASK_DEFAULT_QUEUE") or conf.task_default_queue or ""


def kick(run_id: int, queue: str = "") -> None:
    """Ask a worker to advance the run now (the beat does it anyway)."""
    from celery import current_app

    try:
        current_app.send_task(ADVANCE_TASK, args=[run_id], queue=queue or None)
    except Exception as exc:  # the beat will advance it once the broker is back
        log.warning("could not queue maintenance run %s: %s", run_id, exc)


def cancel_run(run: MaintenanceRun, who: str) -> MaintenanceRun:
    """Stop the run once the host in hand is resumed with its VMs back."""
    with transaction.atomic():
        run = MaintenanceRun.objects.select_for_update(**ROW_ONLY).get(pk=run.pk)
        if not run.active:
            raise RunRefused("RUN_FINISHED", f"The run already ended ({run.state}).")
        if not run.cancel_requested:
            run.cancel_requested = True
            run.journal = [*run.journal, _line(
                f"Cancel asked by {who}: the run stops once the host in hand is "
                "resumed.")]  # fmt: skip
            run.version += 1
            run.save(update_fields=["cancel_requested", "journal", "version",
                                    "updated_at"])  # fmt: skip
    kick(run.pk, run.queue)
    return run


def zone_of(name: str):
    """The operator's time zone by its IANA name; ValidationError if unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError(
            {"time_zone": ["Give an IANA time zone name, like Europe/Berlin or UTC."]}
        ) from None


def shown(moment, zone: str) -> str:
    """``moment`` in the operator's zone: ``2026-12-01 02:00:00 CET``."""
    return timezone.localtime(moment, zone_of(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def _line(text: str) -> dict[str, str]:
    return {"at": timezone.now().isoformat(), "text": text}


def advance(run_id: int, *, steps: int = 20) -> MaintenanceRun | None:
    """Take the run's next steps until it must wait (or ``steps`` are taken)."""
    run = None
    for _ in range(steps):
        run, more = _step(run_id)
        if not more:
            break
    return run


def _moves_done(record: DrainRecord) -> tuple[bool, list, list]:
    """Whether the record's moves all ended; those lost with a worker or
    their job before the switchover (to take again: the VM never left) and
    those that failed otherwise."""
    moves = list(record.migrations.select_related("vm"))
    if any(m.active for m in moves):
        return False, [], []
    lost = [m for m in moves if m.state == MigrationState.FAILED
            and m.error_code in LOST and not m.switched_over]  # fmt: skip
    bad = [m for m in moves if m.state != MigrationState.SUCCEEDED
           and m not in lost and not m.switched_over]  # fmt: skip
    return True, lost, bad


def _step(run_id: int) -> tuple[MaintenanceRun | None, bool]:
    with transaction.atomic():
        run = locked(
            MaintenanceRun.objects.select_related("cluster", "current", "requested_by"),
            run_id,
        )
        if run is None or not run.active:
            return run, False
        # Claim the step: a second advancer holding the same version finds none.
        if not MaintenanceRun.objects.filter(pk=run.pk, version=run.version).update(
            version=run.version + 1
        ):
            return run, False
        run.version += 1
        before = (run.state, run.step)
        more = _take_step(run)
        run.save()
        for event, key, host_id in _events(run, *before):
            # Robust: a listener's error is logged (by Django) and the run goes on.
            run_event.send_robust(
                sender=MaintenanceRun, run=run, event=event, key=key, host_id=host_id
            )
    return run, more


def _events(
    run: MaintenanceRun, state: str, step: int
) -> Iterator[tuple[str, str, int | None]]:
    """What a step did that others may want told (:data:`run_event`): the run
    started, finished a host, ended; with a key unique to each occurrence."""
    if state == MaintenanceRun.PENDING and run.state != MaintenanceRun.PENDING:
        yield "started", f"maintenance.{run.pk}.started", None
    for done in range(step, run.step):
        yield "host.completed", f"maintenance.{run.pk}.host.{done}", run.hosts[done]
    if not run.active:
        yield run.state, f"maintenance.{run.pk}.{run.state}", None


def _take_step(run: MaintenanceRun) -> bool:
    """One step of ``run`` (locked); True when the next may follow at once."""
    now = timezone.now()
    say = run.journal.append
    if run.state == MaintenanceRun.PENDING:
        if run.start_at is not None and now < run.start_at:
            return False  # the beat starts it at its time
        run.state = MaintenanceRun.RUNNING
        if run.start_at is not None:
            late = (now - run.start_at).total_seconds()
            say(_line(f"Window opened at {shown(run.start_at, run.time_zone)}; "
                      f"started {late:.1f} s after it."))  # fmt: skip
    host = Host.objects.select_related("cluster").get(pk=run.hosts[run.step])
    if run.end_by is not None and now >= run.end_by:
        return _window_closed(run, host)
    user = run.requested_by
    if run.phase == MaintenanceRun.DRAIN:
        try:
            outcome, record = drain_and_record(
                host, user, start_by=run.end_by, **run.options
            )
        except DrainRefused as refused:
            return _fail(run, f"{host.name} could not be drained: {refused.message}")
        if outcome.stayed:
            why = " ".join(str(s) for s in outcome.stayed)
            return _fail(run, f"{host.name} stays paused: not every VM can leave. "
                         f"{why}")  # fmt: skip
        say(_line(" ".join(outcome.lines())))
        run.current = record
        if record is not None:
            run.records.add(record)
        run.phase = MaintenanceRun.DRAINING
        run.phase_started_at = now
        return True
    if run.phase in (MaintenanceRun.DRAINING, MaintenanceRun.FAILING_BACK):
        draining = run.phase == MaintenanceRun.DRAINING
        if run.current is not None:
            done, lost, bad = _moves_done(run.current)
            if not done:
                return False
            if bad:
                m = bad[0]
                where = "stays paused" if draining else "is resumed"
                return _fail(run, f"{host.name} {where}: move #{m.pk} of {m.vm.name} "
                             f"{m.state}: {m.error_message}")  # fmt: skip
            if lost:
                run.attempts += 1
                if run.attempts > RETRIES:
                    return _fail(run, f"{host.name}: moves lost with their worker "
                                 f"{RETRIES} times; the run stops.")  # fmt: skip
                names = ", ".join(m.vm.name for m in lost)
                again = "draining" if draining else "failing back"
                say(_line(f"{names}: lost with a worker or its job before the "
                          f"switchover; {again} again."))  # fmt: skip
                run.phase = (
                    MaintenanceRun.DRAIN if draining else MaintenanceRun.FAILBACK
                )
                return True
        if draining and run.drain_only:
            return _host_done(run, host, drained=True)
        if draining:
            say(_line(f"{host.name} is empty; in maintenance for "
                      f"{format_span(run.hold_s)}."))  # fmt: skip
            run.phase = MaintenanceRun.HOLDING
            run.phase_started_at = now
            run.attempts = 0
            return True
        # Every VM its drains moved away must be home before the next host.
        drains = run.records.filter(host=host, kind=DrainRecord.DRAIN)
        away = [vm.name for vm in returning(host, list(drains.order_by("created_at")))
                if vm.host_id != host.pk]  # fmt: skip
        if away:
            run.attempts += 1
            if run.attempts > RETRIES:
                return _fail(run, f"{host.name}: {', '.join(away)} did not come "
                             "back; the run stops.")  # fmt: skip
            say(_line(f"{', '.join(away)}: not back on {host.name} yet; failing "
                      "back again."))  # fmt: skip
            run.phase = MaintenanceRun.FAILBACK
            return True
        return _host_done(run, host)
    if run.phase == MaintenanceRun.HOLDING:
        if (now - run.phase_started_at).total_seconds() < run.hold_s:
            return False
        run.phase = MaintenanceRun.FAILBACK
        return True
    if run.phase == MaintenanceRun.FAILBACK:
        try:
            drains = run.records.filter(host=host, kind=DrainRecord.DRAIN)
            back = resume_with_failback(
                host, user, drains=list(drains.order_by("created_at", "pk")),
                start_by=run.end_by, **run.options,
            )  # fmt: skip
        except DrainRefused as refused:
            return _fail(run, f"{host.name} could not be resumed: {refused.message}")
        say(_line(" ".join(back.lines())))
        run.current = back.record
        if back.record is not None:
            run.records.add(back.record)
        run.phase = MaintenanceRun.FAILING_BACK
        run.phase_started_at = now
        return True
    raise AssertionError(f"unknown phase {run.phase}")


def _window_closed(run: MaintenanceRun, host: Host) -> bool:
    """The window ended: moves not started are not started; the run stops."""
    from hvweb.moves import lifecycle

    unstarted = []
    if run.current is not None:
        for m in run.current.migrations.select_related("vm"):
            if m.state == MigrationState.QUEUED:
                lifecycle.window_closed(m)
            m.refresh_from_db(fields=["state", "error_code", "started_at"])
            if m.error_code == "WINDOW_CLOSED":
                unstarted.append(m.vm.name)
    done = [Host.objects.get(pk=pk).name for pk in run.hosts[: run.step]]
    where = {
        MaintenanceRun.DRAIN: f"{host.name} was not started",
        MaintenanceRun.DRAINING: f"{host.name} is left paused, part drained",
        MaintenanceRun.HOLDING: f"{host.name} is left paused, drained",
        MaintenanceRun.FAILBACK: f"{host.name} is left paused, drained",
        MaintenanceRun.FAILING_BACK: f"{host.name} is resumed, part failed back",
    }[run.phase]
    not_started = f"; moves not started: {', '.join(unstarted)}" if unstarted else ""
    run.state = MaintenanceRun.CANCELLED
    run.error = (
        f"The window closed at {shown(run.end_by, run.time_zone)}: done "
        f"{', '.join(done) or 'no host'}; {where}{not_started}."
    )
    run.finished_at = timezone.now()
    run.journal.append(_line(run.error))
    return False


def _host_done(run: MaintenanceRun, host: Host, *, drained: bool = False) -> bool:
    run.journal.append(_line(
        f"{host.name} done: drained, left paused." if drained
        else f"{host.name} done: resumed, its VMs back."))  # fmt: skip
    run.step += 1
    run.attempts = 0
    run.current = None
    run.phase = MaintenanceRun.DRAIN
    run.phase_started_at = None
    done = [Host.objects.get(pk=pk).name for pk in run.hosts[: run.step]]
    if run.cancel_requested and run.step < len(run.hosts):
        run.state = MaintenanceRun.CANCELLED
        run.error = (f"Cancelled after {host.name} was resumed; done: "
                     f"{', '.join(done)}.")  # fmt: skip
    elif run.step >= len(run.hosts):
        run.state = MaintenanceRun.SUCCEEDED
    if not run.active:
        run.finished_at = timezone.now()
        run.journal.append(_line(run.error or f"Done: {', '.join(done)}."))
        return False
    return True


def _fail(run: MaintenanceRun, why: str) -> bool:
    run.state = MaintenanceRun.FAILED
    run.error = why
    run.finished_at = timezone.now()
    run.journal.append(_line(f"Stopped: {why}"))
    return False
