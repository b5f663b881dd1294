"""Migration moves 0002: events recorded before it get their Hyper-V IDs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from hvweb.inventory.testing import make_world

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("moves", "0001_initial")]
AFTER = [("moves", "0002_observe_event_id")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps():
    leaves = MigrationLoader(connection).graph.leaf_nodes()
    apps = migrate(BEFORE)
    yield apps
    migrate(leaves)


def test_recorded_ends_and_queued_moves_get_their_event_ids(old_apps, settings):
    settings.HVWEB_LONG_BLACKOUT_S = 1.0
    get = old_apps.get_model
    world = make_world("OLD", hosts=2)  # the inventory is at its latest
    hosts = [get("inventory", "Host").objects.get(pk=h.pk) for h in world.hosts]
    cluster = get("inventory", "Cluster").objects.get(pk=world.cluster.pk)
    vm = get("inventory", "VirtualMachine").objects.get(pk=world.vm.pk)
    move = get("moves", "Migration").objects.create(
        vm=vm, cluster=cluster, source=hosts[0], destination=hosts[1],
        performance_option="tcpip", speed=0, reserved_memory_mib=512,
        state="succeeded",
    )  # fmt: skip
    Event = get("moves", "MigrationEvent")
    frames = {
        "queued": {"waiting_for": ["HOST_MIGRATION_LIMIT"], "reason": "busy"},
        "stage_started": {"stage": "online"},
        "completed": {"result": {"downtime_s": 2.5}},
    }
    for seq, (kind, data) in enumerate(frames.items(), start=1):
        Event.objects.create(
            migration=move, seq=seq, kind=kind, data={"kind": kind, "data": data}
        )

    apps = migrate(AFTER)
    Event = apps.get_model("moves", "MigrationEvent")
    found = dict(Event.objects.values_list("kind", "event_id"))
    assert found == {"queued": 21501, "stage_started": None, "completed": 20417}
    assert Event.objects.get(kind="completed").data["event_id"] == 20417
