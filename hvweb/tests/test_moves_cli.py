"""manage.py live_migrate and cancel_migration, against a real worker."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from hvweb.inventory.testing import make_member, make_vm, make_world
from hvweb.moves.models import Migration

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def world():
    w = make_world()
    w.vm.memory_mib = 64
    w.vm.save()
    return w


def test_live_migrate_waits_and_prints_the_record_as_json(celery_worker, world):
    code, out, _ = run(
        "live_migrate", world.vm.name, world.hosts[2].name,
        "--wait", "--json", "--speed", "0", "--timeout", "60",
    )  # fmt: skip
    assert code == 0
    record = json.loads(out)
    assert record["state"] == "succeeded"
    assert (record["source"], record["destination"]) == ("HV-BLUE-1", "HV-BLUE-3")
    assert record["passes"] >= 1 and record["bytes_sent"] > 0
    assert record["downtime_s"] > 0 and record["total_time_s"] > record["downtime_s"]
    assert record["error"] is None
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[2]


def test_a_refused_move_exits_3_naming_every_failing_rule(world):
    world.hosts[1].cpu_vendor = "amd"
    world.hosts[1].save()
    code, _, err = run("live_migrate", world.vm.name, world.hosts[1].name)
    assert code == 3
    assert "refused: CPU_VENDOR" in err
    code, out, _ = run("live_migrate", world.vm.name, world.vm.host.name, "--json")
    assert code == 3
    assert [f["code"] for f in json.loads(out)["failures"]] == ["SAME_HOST"]
    assert not Migration.objects.exists()


def test_bad_options_exit_2_naming_the_option(world):
    code, _, err = run(
        "live_migrate", world.vm.name, world.hosts[1].name, "--downtime-limit", "-1"
    )
    assert code == 2
    assert err.startswith("downtime_limit_ms:")
    with pytest.raises(CommandError, match="destination: no host named 'NOPE'"):
        call_command("live_migrate", world.vm.name, "NOPE")


def test_as_a_user_outside_the_team_the_vm_does_not_exist(world):
    stranger = make_member(make_world("RED").team, "operator")
    with pytest.raises(CommandError, match="vm: no virtual machine named"):
        call_command(
            "live_migrate",
            world.vm.name,
            world.hosts[1].name,
            "--user",
            stranger.username,
        )


def test_a_viewer_may_not_start_a_move(world):
    viewer = make_member(world.team, "viewer")
    with pytest.raises(CommandError, match="may not start moves"):
        call_command(
            "live_migrate",
            world.vm.name,
            world.hosts[1].name,
            "--user",
            viewer.username,
        )


def test_cancel_migration_cancels_a_queued_move_and_refuses_a_finished_one(
    celery_worker, world
):
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    code, out, _ = run(
        "live_migrate", world.vm.name, world.hosts[1].name, "--json", "--speed", "0.02"
    )
    running = json.loads(out)["id"]
    other = make_vm(world.hosts[0], "blue-db-1", csv=world.csv, memory_mib=64)
    code, out, _ = run("live_migrate", other.name, world.hosts[2].name, "--json")
    queued = json.loads(out)
    assert queued["state"] == "queued"
    code, out, _ = run("cancel_migration", str(queued["id"]))
    assert (code, out.strip()) == (0, f"move #{queued['id']} cancelled")
    code, out, _ = run("cancel_migration", str(running), "--json")
    assert code == 0 and json.loads(out)["id"] == running
    code, _, err = run("cancel_migration", str(queued["id"]))
    assert code == 3 and "MIGRATION_FINISHED" in err


def test_drain_host_waits_until_every_vm_left_then_resume(celery_worker, world):
    second = make_vm(world.hosts[0], "blue-web-2", csv=world.csv, memory_mib=64)
    code, out, err = run(
        "drain_host", "HV-BLUE-1", "--wait", "--json", "--speed", "0",
        "--timeout", "90",
    )  # fmt: skip
    assert code == 0, err
    body = json.loads(out)
    assert body["state"] == "paused" and body["complete"] and body["stayed"] == []
    assert {m["vm"] for m in body["moves"]} == {"blue-web-1", "blue-web-2"}
    assert {m["state"] for m in body["moves"]} == {"succeeded"}
    for vm in (world.vm, second):
        vm.refresh_from_db()
        assert vm.host != world.hosts[0]
    code, out, _ = run("drain_host", "HV-BLUE-1", "--resume")
    assert (code, out.strip()) == (0, "HV-BLUE-1 resumed: it takes VMs again")


def test_drain_host_exits_1_naming_what_stays_and_3_for_a_down_host(
    world, unworked_queue
):
    from hvweb.inventory.models import Host

    make_vm(world.hosts[0], "local-1", csv=None, highly_available=False)
    code, out, _ = run("drain_host", "HV-BLUE-1", "--speed", "0")
    assert code == 1
    assert "\nlocal-1 stays: no host of CLU-BLUE can take it; the closest" in out
    Host.objects.filter(pk=world.hosts[1].pk).update(state="down")
    code, _, err = run("drain_host", "HV-BLUE-2")
    assert code == 3 and err.startswith("refused: HOST_DOWN: HV-BLUE-2 is down")
    code, _, err = run("drain_host", "HV-BLUE-3", "--speed", "-1")
    assert code == 2 and err.startswith("speed: ")
    with pytest.raises(CommandError, match="host: no host named 'NOPE'"):
        call_command("drain_host", "NOPE")
