"""A host's load has one home (``hvweb.moves.capacity``): every reader agrees.

The moves here are rows as the service and the runner leave them; no worker
runs them, so the tests can hold a move at any point of its life.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hvweb.inventory.models import Cluster, Host, VirtualMachine
from hvweb.inventory.testing import make_host, make_member, make_vm, make_world
from hvweb.moves import capacity
from hvweb.moves.capacity import common_failures
from hvweb.moves.choices import MigrationState
from hvweb.moves.lifecycle import dispatch_queued
from hvweb.moves.models import Migration
from hvweb.moves.services import current_failures, evaluate_destinations
from hvweb.moves.snapshot import cluster_snapshot
from migrator import Stage
from migrator.rules import Failure

pytestmark = pytest.mark.django_db


def record(vm, destination, state=MigrationState.RUNNING, **fields) -> Migration:
    """A move as the service records it (no worker takes it here)."""
    return Migration.objects.create(
        vm=vm,
        cluster=vm.host.cluster,
        source=vm.host,
        destination=destination,
        performance_option="tcpip",
        speed=0,
        reserved_memory_mib=vm.memory_mib,
        state=state,
        **fields,
    )


def switch_over(move: Migration) -> None:
    """What the runner writes when the "online" stage starts."""
    VirtualMachine.objects.filter(pk=move.vm_id).update(host=move.destination)
    Migration.objects.filter(pk=move.pk).update(
        stage=Stage.ONLINE.value, switched_over=True
    )


def board_host(client, host: Host) -> str:
    """The host's column on the clusters overview, as text."""
    body = html.unescape(client.get("/").content.decode())
    head = body.index(f'id="host-{host.pk}"')
    return body[head : body.index("</article>", head)]


def host_page(client, host: Host) -> str:
    body = html.unescape(client.get(host.get_absolute_url()).content.decode())
    return re.sub(r"\s+", " ", body)


@pytest.fixture
def world():
    w = make_world()
    w.viewer = make_member(w.team, "viewer")
    return w


def test_a_switched_over_vm_counts_as_used_on_its_destination_never_also_reserved(
    client, world
):
    """Before "online" the move reserves the VM's memory on the destination;
    from "online" on the VM's row names the destination and holds it there.
    Every reader (checks, pages, the live snapshot) counts it once."""
    source, destination, _ = world.hosts
    other = make_vm(source, "blue-db-1", csv=world.csv, memory_mib=2048)
    move = record(world.vm, destination)  # 1024 MiB on its way to HV-BLUE-2
    client.force_login(world.viewer)

    def readers():
        (d,) = evaluate_destinations(other, [destination])
        hosts = {h["id"]: h for h in cluster_snapshot(world.cluster.pk)["hosts"]}
        return d.free_mib, hosts[destination.pk], hosts[source.pk]

    free, snap, snap_source = readers()
    assert free == 16384 - 1024
    assert (snap["used_mib"], snap["reserved_mib"]) == (0, 1024)
    assert (snap_source["used_mib"], snap_source["reserved_mib"]) == (1024 + 2048, 0)
    column = board_host(client, destination)
    assert "0 of 16384 MiB" in column and "+ 1024 MiB reserved" in column
    assert "+ 1024 MiB reserved by moves coming" in host_page(client, destination)

    switch_over(move)
    free, snap, snap_source = readers()
    assert free == 16384 - 1024  # not 16384 - 2048: counted once
    assert (snap["used_mib"], snap["reserved_mib"]) == (1024, 0)
    assert (snap_source["used_mib"], snap_source["reserved_mib"]) == (2048, 0)
    column = board_host(client, destination)
    assert "1024 of 16384 MiB" in column and "MiB reserved" not in column
    page = host_page(client, destination)
    assert "1024 of 16384 MiB" in page and "reserved by moves coming" not in page

    # Until it ends, the switched-over move still holds a slot on both hosts.
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    (d,) = evaluate_destinations(other, [destination])
    assert [f.code for f in d.failures] == ["HOST_MIGRATION_LIMIT"]
    Migration.objects.filter(pk=move.pk).update(state=MigrationState.SUCCEEDED)
    (d,) = evaluate_destinations(other, [destination])
    assert d.failures == () and d.free_mib == 16384 - 1024


def test_readiness_now_and_the_apis_operational_readiness_agree_under_load(
    client, world
):
    """``readiness --now`` once used a neutral load; with moves under way it
    now says what the API's ``?operational=true`` and starting a move say."""
    h1, h2, h3 = world.hosts
    small = make_host(world.cluster, "HV-BLUE-SMALL", memory_mib=2048)
    db = make_vm(h1, "blue-db-1", csv=world.csv, memory_mib=1536)
    app = make_vm(h3, "blue-app-1", csv=world.csv, memory_mib=512)
    make_vm(h2, "blue-idle-1", csv=world.csv, memory_mib=256)
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    record(db, small)  # reserves 1536 of SMALL's 2048 MiB; H1 and SMALL are busy
    switch_over(record(app, h2))  # on H2 now, still holding H2's and H3's slots
    client.force_login(world.viewer)

    def by_api(vm) -> dict[str, list[str]]:
        url = f"/api/vms/{vm.pk}/readiness/"
        body = client.get(url, {"operational": "true"}).json()
        return {
            d["host"]["name"]: [f["code"] for f in d["failures"]]
            for d in body["destinations"]
        }

    def by_command(vm, *now) -> dict[str, list[str]]:
        out = StringIO()
        call_command("readiness", "--json", "--vm", vm.name, *now, stdout=out)
        return {
            p["destination"]: [f["code"] for f in p["failures"]]
            for p in json.loads(out.getvalue())
        }

    vms = VirtualMachine.objects.filter(host__cluster=world.cluster).select_related(
        "host__cluster"
    )
    seen = set()
    for vm in vms:
        now = by_command(vm, "--now")
        assert now == by_api(vm), vm.name
        for name, codes in now.items():
            start = current_failures(vm, Host.objects.get(name=name))
            assert codes == [f.code for f in start], (vm.name, name)
            seen.update(codes)
    assert {"INSUFFICIENT_MEMORY", "HOST_MIGRATION_LIMIT", "MIGRATION_ACTIVE"} <= seen
    web = VirtualMachine.objects.get(pk=world.vm.pk)
    assert "INSUFFICIENT_MEMORY" in by_command(web, "--now")["HV-BLUE-SMALL"]
    assert by_command(web)["HV-BLUE-SMALL"] == []  # the seven rules alone
    assert "MIGRATION_ACTIVE" in by_command(app, "--now")["HV-BLUE-1"]


def test_the_dispatcher_starts_as_many_queued_moves_as_there_are_free_slots(world):
    """The capacity is read once and updated as each move is placed: with two
    free slots on the source, the two oldest queued moves start, not all."""
    world.cluster.max_simultaneous_migrations = 2
    world.cluster.save()
    source = world.hosts[0]
    queued = [
        record(
            make_vm(source, f"blue-q-{i}", csv=world.csv, memory_mib=64),
            world.hosts[1 + i % 2],
            MigrationState.QUEUED,
        )
        for i in range(5)
    ]
    started = dispatch_queued(world.cluster.pk)
    assert [m.pk for m in started] == [m.pk for m in queued[:2]]
    states = dict(Migration.objects.values_list("pk", "state"))
    assert [states[m.pk] for m in queued] == ["running"] * 2 + ["queued"] * 3
    assert dispatch_queued(world.cluster.pk) == []  # no slot left


def queue_of(prefix: str, size: int, *, limit: int) -> int:
    """A cluster whose first host has ``size`` moves queued, two running."""
    w = make_world(prefix, hosts=4)
    w.cluster.max_simultaneous_migrations = limit
    w.cluster.save()
    source = w.hosts[0]
    for i in range(size + 2):
        vm = make_vm(source, f"{prefix.lower()}-q-{i}", csv=w.csv, memory_mib=64)
        record(vm, w.hosts[1 + i % 3], MigrationState.RUNNING if i < 2 else "queued")
    return w.cluster.pk


def queries_to_dispatch(cluster_id: int) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        started = dispatch_queued(cluster_id)
    return len(queries), len(started)


def test_dispatching_a_queue_costs_queries_in_proportion_to_the_moves_it_starts():
    """A queue that still waits costs the same few queries at 20 moves as at
    40; each move started costs the same few more (linear, never quadratic)."""
    waiting_20 = queries_to_dispatch(queue_of("WA", 20, limit=2))
    waiting_40 = queries_to_dispatch(queue_of("WB", 40, limit=2))
    assert waiting_20[1] == waiting_40[1] == 0
    assert waiting_20[0] == waiting_40[0] <= 10
    started = [
        queries_to_dispatch(queue_of(prefix, size, limit=100))
        for prefix, size in (("SA", 10), ("SB", 20), ("SC", 40))
    ]
    assert [n for _, n in started] == [10, 20, 40]
    (q10, _), (q20, _), (q40, _) = started
    per_move = (q20 - q10) / 10
    assert q40 - q20 == 20 * per_move
    # Its journal event (lock, update, insert) and the audit trail's entry, with
    # the entry's team (one read of the move's cluster); nothing that reads the
    # queue or the load again.
    assert per_move <= 13


def test_common_failures_are_those_every_host_shares_and_need_two_hosts():
    def failure(code, message="m"):
        return Failure(code=code, message=message, seed="", fields=())

    ha, cpu = failure("HIGHLY_AVAILABLE"), failure("CPU_VENDOR")
    assert common_failures([(ha, cpu), (ha,)]) == (ha,)
    # Same rule, another message: not the same failure.
    assert common_failures([(ha,), (failure("HIGHLY_AVAILABLE", "other"),)]) == ()
    # One host alone: its failure may be its own.
    assert common_failures([(ha, cpu)]) == ()
    assert common_failures([]) == ()


def test_each_hosts_intake_is_what_readiness_says_pair_by_pair_under_load(world):
    """The host cards' intake (``capacity.intake``, counted by
    ``rules.ready_counts``) agrees with every pair ``capacity.readiness``
    evaluates: moves under way, a host at its limit, one without the memory,
    one paused, one that fits some VMs and not others, and the demo's hosts
    that each break a rule."""
    call_command("seed_demo", verbosity=0)
    h1, h2, h3 = world.hosts
    small = make_host(world.cluster, "HV-BLUE-SMALL", memory_mib=2048)
    paused = make_host(world.cluster, "HV-BLUE-PAUSED", memory_mib=65536)
    paused.state = "paused"
    paused.save()
    db = make_vm(h1, "blue-db-1", csv=world.csv, memory_mib=1536)
    make_vm(h3, "blue-app-1", csv=world.csv, memory_mib=512)
    make_vm(h2, "blue-idle-1", csv=world.csv, memory_mib=256)
    make_vm(h2, "blue-big-1", csv=world.csv, memory_mib=1024)
    tight = make_host(world.cluster, "HV-BLUE-TIGHT", memory_mib=1024)
    make_vm(tight, "blue-tight-1", csv=world.csv, memory_mib=512)
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    record(db, small)  # SMALL has 512 MiB left; H1 and SMALL at their limit
    seen = set()
    for cluster in Cluster.objects.all():
        vms = VirtualMachine.objects.filter(host__cluster=cluster).select_related(
            "host__cluster"
        )
        pairs = defaultdict(list)
        for result in capacity.readiness(vms):
            pairs[result.destination.pk].append(result)
        intake = capacity.intake(capacity.load(cluster))
        assert set(intake) == set(pairs), cluster.name
        for pk, results in pairs.items():
            found = intake[pk]
            assert (found.takes, found.asked) == (
                sum(r.ok for r in results),
                len(results),
            ), (cluster.name, results[0].destination.name)
            if not found.takes:
                name = results[0].destination.name
                every = [f for r in results for f in r.failures]
                own = [f for f in every if name in f.subjects]
                assert found.stops == tuple(dict.fromkeys(own or every)), name
            seen.add("full" if found.takes == found.asked else found.takes > 0)
            seen.update(found.codes)
    assert {"full", True, False} <= seen  # hosts taking all, some and none
    assert {"HOST_MIGRATION_LIMIT", "DESTINATION_PAUSED", "BOOT_DRIVE"} <= seen
