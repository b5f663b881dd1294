"""A move's lifecycle has one home (``hvweb.moves.lifecycle``)."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

import hvweb.moves
from hvweb.inventory.testing import make_member, make_vm, make_world
from hvweb.moves import lifecycle
from hvweb.moves.choices import MigrationState, StageOutcome
from hvweb.moves.lifecycle import Kind, move_finished
from hvweb.moves.models import Migration, MigrationEvent, MigrationStage
from hvweb.moves.services import cancel_migration, start_migration
from migrator import Stage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    w = make_world()
    w.operator = make_member(w.team, "operator")
    w.vm.memory_mib = 64
    w.vm.save()
    return w


@pytest.fixture
def ended():
    """The moves ``move_finished`` announced, in order."""
    seen: list[Migration] = []

    def receiver(sender, migration, **kwargs):
        seen.append(migration)

    move_finished.connect(receiver)
    yield seen
    move_finished.disconnect(receiver)


def kinds(migration: Migration) -> list[str]:
    return list(
        MigrationEvent.objects.filter(migration=migration)
        .order_by("seq")
        .values_list("kind", flat=True)
    )


def test_ending_a_move_frees_its_slot_for_the_next_queued_move(
    world, unworked_queue, ended
):
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    first = start_migration(world.vm, world.hosts[1], world.operator)
    other = make_vm(world.hosts[0], "blue-web-2", csv=world.csv, memory_mib=64)
    second = start_migration(other, world.hosts[2], world.operator)
    assert (first.state, second.state) == ("running", "queued")
    cancel_migration(first, world.operator)  # no worker took it: it ends now
    second.refresh_from_db()
    assert second.state == MigrationState.RUNNING
    assert kinds(second) == [Kind.QUEUED, Kind.DISPATCHED]
    assert [m.pk for m in ended] == [first.pk]
    assert ended[0].state == MigrationState.CANCELLED


def test_a_move_ends_once_with_its_running_stage_and_is_announced_after_commit(
    world, unworked_queue, ended
):
    migration = start_migration(world.vm, world.hosts[1], world.operator)
    # As a worker leaves it inside the first stage.
    Migration.objects.filter(pk=migration.pk).update(
        started_at=timezone.now(), stage=Stage.CONFIGURATION_TRANSFER.value
    )
    MigrationStage.objects.create(
        migration=migration, stage=Stage.CONFIGURATION_TRANSFER.value, number=1,
        started_t=0.0, started_at=timezone.now(),
    )  # fmt: skip
    with transaction.atomic():
        done = lifecycle.finish(
            migration.pk, MigrationState.FAILED, "LINK_DOWN",
            "The link failed: the VM keeps running on the source.",
            stage=Stage.CONFIGURATION_TRANSFER.value, reason="link failed",
        )  # fmt: skip
        assert ended == []  # not before the end is committed
    assert [m.pk for m in ended] == [migration.pk]
    assert (done.state, done.error_code, done.failed_stage) == (
        "failed", "LINK_DOWN", "configuration_transfer",
    )  # fmt: skip
    assert done.finished_at is not None
    stage = MigrationStage.objects.get(migration=migration)
    assert stage.outcome == StageOutcome.FAILED and stage.finished_at is not None
    last = MigrationEvent.objects.filter(migration=migration).latest("seq")
    assert last.kind == Kind.FAILED
    assert last.data["data"] == {
        "stage": "configuration_transfer", "code": "LINK_DOWN",
        "reason": "link failed",
    }  # fmt: skip

    again = lifecycle.finish(migration.pk, MigrationState.CANCELLED, "CANCELLED", "x")
    assert again.state == MigrationState.FAILED  # the first end stands
    assert kinds(migration)[-1] == Kind.FAILED and kinds(migration).count("failed") == 1
    assert len(ended) == 1


def test_a_real_move_journals_only_the_vocabularys_kinds(celery_worker, world):
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    deadline = time.monotonic() + 60
    while Migration.objects.get(pk=migration.pk).active:
        assert time.monotonic() < deadline, "the move did not end"
        time.sleep(0.05)
    found = kinds(migration)
    assert set(found) <= set(Kind)
    assert found[:2] == [Kind.DISPATCHED, Kind.STARTED]
    assert found[-1] == Kind.COMPLETED


def _imports(path: Path) -> set[str]:
    """The ``hvweb.moves`` modules ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1:
                names = [base] if base else [a.name for a in node.names]
                found |= {n.split(".")[0] for n in names}
            elif base.startswith("hvweb.moves."):
                found.add(base.split(".")[2])
            elif base == "hvweb.moves":
                found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hvweb.moves."):
                    found.add(alias.name.split(".")[2])
    return found


def test_the_moves_modules_import_one_another_without_a_cycle():
    """services → tasks → runner → services was a cycle (broken by an import
    inside a function); the lifecycle now sends the task by name."""
    package = Path(hvweb.moves.__file__).parent
    modules = {p.stem: p for p in package.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & set(modules) for name, path in modules.items()}
    assert "lifecycle" in graph["runner"] and "runner" in graph["tasks"]
    assert not graph["lifecycle"] & {"tasks", "runner", "services"}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, " → ".join((*trail, name))
        for other in graph[name]:
            visit(other, (*trail, name))

    for name in graph:
        visit(name, ())
