"""What-if replays of a finished move: the same VM, workload and seed, other
settings, as a pure simulation.

A replay re-runs the engine on the spec the move ran with (``Migration.spec``;
for a move recorded before specs were kept, the spec its rows give now) with
any of four settings changed: the convergence policy, the performance option,
the link's rate and the downtime limit. It touches no inventory: no host,
VM or reservation is read for it beyond the move's own record, and nothing
but the :class:`~hvweb.moves.models.Replay` row is written. Injected faults
are not replayed: a replay asks what the settings would have done.

A simulation takes 0.4–1.8 s on this machine for the demo's VMs (measured
with ``benchmarks/convergence.py``), too long to hold a request, so
:func:`request_replay` stores the replay queued and a Celery task
(:func:`hvweb.moves.tasks.run_replay`) runs it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from hvweb.inventory.access import may
from hvweb.inventory.models import Cluster
from migrator import Engine, MigrationSpec, PassFinished
from migrator.errors import SpecError

from .choices import ReplayState
from .models import Migration, MigrationPass, Replay
from .options import MoveOptions
from .runner import migration_spec

__all__ = [
    "REPLAY_SETTINGS",
    "ReplayRefused",
    "original_passes",
    "replay_settings",
    "replay_spec",
    "request_replay",
    "run",
]

#: The settings a replay may change; each defaults to the move's own.
REPLAY_SETTINGS = (
    "policy",
    "performance_option",
    "link_bandwidth_mbps",
    "downtime_limit_ms",
)
#: The Celery task that runs a replay (``hvweb.moves.tasks.run_replay``).
REPLAY_TASK = "hvweb.run_replay"


class ReplayRefused(Exception):
    """The move cannot be replayed now (it is still under way)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def base_spec(migration: Migration) -> MigrationSpec:
    """The spec the move ran with (rebuilt from its rows if it never ran, or
    if the engine no longer reads the one it kept)."""
    if migration.spec:
        try:
            return MigrationSpec.from_dict(migration.spec)
        except SpecError:
            pass
    return migration_spec(migration)


def link_mbps(spec: MigrationSpec) -> int:
    return round(spec.bandwidth_bps / 1e6)


def replay_settings(migration: Migration, asked: Mapping[str, Any]) -> dict[str, Any]:
    """The replay's four settings, the move's own where ``asked`` leaves one out.

    Each is checked by the rule that checks it for a move (MoveOptions) or a
    cluster (its link field); a ValidationError names every bad one.
    """
    unknown = sorted(set(asked) - set(REPLAY_SETTINGS))
    errors: dict[str, list[str]] = {
        name: [f"is not a replay setting; give {', '.join(REPLAY_SETTINGS)}."]
        for name in unknown
    }
    own = base_spec(migration)

    def given(name: str) -> Any:
        value = asked.get(name)
        return None if value in (None, "") else value

    try:
        options = MoveOptions.parse(
            migration.cluster,
            performance_option=given("performance_option")
            or migration.performance_option,
            downtime_limit_ms=given("downtime_limit_ms")
            if given("downtime_limit_ms") is not None
            else migration.downtime_limit_ms,
            policy=given("policy") or migration.policy,
            speed=0,
        )
    except ValidationError as exc:
        errors |= exc.message_dict
        options = None
    link = given("link_bandwidth_mbps")
    if link is None:
        link = link_mbps(own)
    elif isinstance(link, bool) or isinstance(link, float) and not link.is_integer():
        errors["link_bandwidth_mbps"] = ["must be a whole number of Mbit/s."]
    else:
        try:
            link = Cluster._meta.get_field("link_bandwidth_mbps").clean(link, None)
        except ValidationError as exc:
            errors["link_bandwidth_mbps"] = exc.messages
    if errors:
        raise ValidationError(errors)
    assert options is not None
    return {
        "policy": options.policy,
        "performance_option": options.performance_option,
        "link_bandwidth_mbps": int(link),
        "downtime_limit_ms": options.downtime_limit_ms,
    }


def replay_spec(migration: Migration, settings: Mapping[str, Any]) -> MigrationSpec:
    """The move's spec with the replay's settings."""
    return dataclasses.replace(
        base_spec(migration),
        policy=settings["policy"],
        performance_option=settings["performance_option"],
        compression=None,
        bandwidth_bps=settings["link_bandwidth_mbps"] * 1e6,
        downtime_limit_s=settings["downtime_limit_ms"] / 1000,
    )


def request_replay(migration: Migration, user=None, **asked: Any) -> Replay:
    """Store a replay of ``migration`` with the ``asked`` settings; a worker runs it.

    Raises PermissionDenied (operators replay; it writes to the move's
    history), ReplayRefused for a move still under way, and ValidationError
    naming each bad setting.
    """
    if user is not None and not may(user, "operate", migration):
        raise PermissionDenied("Replaying a move needs the operator role.")
    if migration.active:
        raise ReplayRefused(
            "MIGRATION_ACTIVE",
            "The move is still under way: replay it once it has ended.",
        )
    settings = replay_settings(migration, asked)
    with transaction.atomic():
        replay = Replay.objects.create(
            migration=migration, requested_by=user, **settings
        )
        transaction.on_commit(lambda: _send(replay.pk))
    return replay


def job_id(replay_id: int) -> str:
    """The Celery task id of the replay's job (the reaper looks for it)."""
    return f"hvweb-replay-{replay_id}"


def _send(replay_id: int) -> None:
    from celery import current_app

    try:
        current_app.send_task(REPLAY_TASK, args=[replay_id], task_id=job_id(replay_id))
    except Exception as exc:  # kombu raises its own kinds for a lost broker
        Replay.objects.filter(pk=replay_id).update(
            state=ReplayState.FAILED,
            error=f"The job queue (Redis) did not take the replay: {exc}",
        )


def run(replay_id: int) -> Replay:
    """Run a queued replay's simulation and store what it did (idempotent)."""
    replay = Replay.objects.select_related("migration__cluster").get(pk=replay_id)
    if replay.state != ReplayState.QUEUED:
        return replay
    spec = replay_spec(
        replay.migration, {name: getattr(replay, name) for name in REPLAY_SETTINGS}
    )
    began = time.perf_counter()
    engine = Engine(spec)
    passes = [
        {k: v for k, v in event.to_dict().items() if k != "kind"}
        for event in engine.events()
        if isinstance(event, PassFinished)
    ]
    wall = time.perf_counter() - began
    assert engine.result is not None
    Replay.objects.filter(pk=replay.pk, state=ReplayState.QUEUED).update(
        state=ReplayState.DONE,
        result=engine.result.to_dict(),
        passes=passes,
        wall_time_s=wall,
    )
    replay.refresh_from_db()
    return replay


def original_passes(migration: Migration) -> list[dict[str, Any]]:
    """The move's own passes, as a replay's are stored."""
    fields = [
        f.name
        for f in MigrationPass._meta.get_fields()
        if f.concrete and f.name not in ("id", "migration")
    ]
    return list(migration.passes_done.values(*fields))
