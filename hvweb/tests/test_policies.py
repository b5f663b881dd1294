"""Convergence policies from the console: per move, per cluster, and an abort."""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from hvweb.api.testing import token_client
from hvweb.inventory.testing import make_member, make_moving_world, make_world
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration
from hvweb.moves.services import start_migration
from hvweb.tests.test_moves import finished
from hvweb.tests.test_shapes import INLINE_SCRIPT
from migrator import POLICIES, Stage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    return make_moving_world(
        workload_profile="web", write_rate=2_000, working_set_pages=2_000
    )


def hammer(world, link_mbps: int = 100) -> None:
    """A guest that sweeps 16,000 of its 16,384 pages faster than the link
    drains them: no pass ever gets its dirty set under the limit."""
    vm = world.vm
    vm.memory_mib = 64
    vm.workload_profile = "memory_hammer"
    vm.write_rate = 50_000
    vm.working_set_pages = 16_000
    vm.save()
    world.cluster.link_bandwidth_mbps = link_mbps
    world.cluster.save()


def test_a_move_takes_the_clusters_default_policy_unless_it_names_one(
    world, unworked_queue
):
    world.cluster.default_policy = "throttle"
    world.cluster.save()
    move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    assert move.policy == "throttle"
    Migration.objects.filter(pk=move.pk).update(state=MigrationState.SUCCEEDED)
    move = start_migration(
        world.vm, world.hosts[1], world.operator, speed=0, policy="escalate"
    )
    assert move.policy == "escalate"
    Migration.objects.filter(pk=move.pk).update(state=MigrationState.SUCCEEDED)


def test_an_unknown_policy_names_the_field_everywhere(world, unworked_queue):
    with pytest.raises(ValidationError) as bad:
        start_migration(world.vm, world.hosts[1], world.operator, policy="yolo")
    assert set(bad.value.message_dict) == {"policy"}
    assert "'yolo' is not a convergence policy" in bad.value.message_dict["policy"][0]
    client = token_client(world.operator)
    body = {"vm": world.vm.pk, "destination": world.hosts[1].pk, "speed": 0}
    response = client.post("/api/migrations/", body | {"policy": "yolo"}, format="json")
    assert response.status_code == 400, response.content
    assert "policy" in response.json()
    response = client.post("/api/migrations/", body | {"policy": 7}, format="json")
    assert response.status_code == 400 and "policy" in response.json()
    with pytest.raises(CommandError, match="--policy: invalid choice: 'yolo'"):
        call_command("live_migrate", world.vm.name, world.hosts[1].name,
                     "--policy", "yolo")  # fmt: skip
    assert not Migration.objects.exists()


def test_the_api_and_the_cli_start_a_move_with_its_policy(world, unworked_queue):
    client = token_client(world.operator)
    body = {"vm": world.vm.pk, "destination": world.hosts[1].pk, "speed": 0}
    response = client.post(
        "/api/migrations/", body | {"policy": "suspend-if-needed"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["policy"] == "suspend-if-needed"
    Migration.objects.update(state=MigrationState.SUCCEEDED)
    out = io.StringIO()
    call_command(
        "live_migrate", world.vm.name, world.hosts[2].name, "--policy", "throttle",
        "--json", stdout=out,
    )  # fmt: skip
    assert json.loads(out.getvalue())["policy"] == "throttle"
    Migration.objects.update(state=MigrationState.SUCCEEDED)


def test_the_cluster_api_sets_the_default_policy_and_refuses_an_unknown_one(world):
    admin = make_member(world.team, "administrator")
    client = token_client(admin)
    url = f"/api/clusters/{world.cluster.pk}/"
    response = client.patch(url, {"default_policy": "nope"}, format="json")
    assert response.status_code == 400 and "default_policy" in response.json()
    response = client.patch(url, {"default_policy": "escalate"}, format="json")
    assert response.status_code == 200, response.content
    world.cluster.refresh_from_db()
    assert world.cluster.default_policy == "escalate"


@pytest.mark.parametrize("policy", ["escalate", "suspend-if-needed"])
def test_a_policy_that_gives_up_aborts_the_move_and_the_vm_stays(
    celery_worker, world, client, policy
):
    hammer(world)
    move = start_migration(
        world.vm, world.hosts[1], world.operator, speed=0, policy=policy
    )
    finished(move)
    assert move.state == MigrationState.FAILED
    assert move.error_code == "NOT_CONVERGING"
    assert "keeps running on its source" in move.error_message
    assert move.failed_stage == Stage.MEMORY_TRANSFER.value
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]
    assert not move.switched_over
    assert not move.stages.filter(stage=Stage.ONLINE.value).exists()
    # The figures of the pre-copy it gave up on are kept.
    assert move.result["aborted"] is True and move.result["policy"] == policy
    assert move.passes == move.passes_done.count() == 5  # Hyper-V 2019's cap
    assert move.downtime_s == 0
    assert move.spec["policy"] == policy
    assert all(p.downtime_limit_ms is not None for p in move.passes_done.all())
    response = token_client(world.operator).get(f"/api/migrations/{move.pk}/")
    assert response.json()["passes"][0]["downtime_limit_ms"] == 300
    # Its page says so, and where the VM is.
    client.force_login(world.operator)
    page = client.get(move.get_absolute_url()).content.decode()
    assert "Aborted: pre-copy did not converge" in page
    assert f"{world.hosts[0].name} (the source)" in page
    assert "NOT_CONVERGING: pre-copy did not converge" in page


def test_hyperv_switches_over_the_same_guest_that_escalate_gives_up_on(
    celery_worker, world
):
    hammer(world)
    move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    finished(move)
    assert (move.state, move.policy) == (MigrationState.SUCCEEDED, "hyperv")
    assert move.stop_reason == "pass_cap"
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[1]


def test_a_throttled_move_records_the_throttle_of_each_pass(celery_worker, world):
    hammer(world)
    move = start_migration(
        world.vm, world.hosts[1], world.operator, speed=0, policy="throttle"
    )
    finished(move)
    assert move.state == MigrationState.SUCCEEDED
    throttles = list(move.passes_done.values_list("throttle_pct", flat=True))
    # Unproductive from pass 1: throttled from the second on, 20 % then +10 %.
    assert throttles == [0, 0, 20, 30, 40]
    assert throttles == move.result["throttle_pct_per_pass"]
    assert move.result["guest_slowdown_pct"] > 0
    # Viewers get the same figures in the pass frames.
    frames = move.events.filter(kind="pass_finished").order_by("seq")
    assert [f.data["data"]["throttle_pct"] for f in frames] == throttles
    assert {f.data["data"]["downtime_limit_ms"] for f in frames} == {300}


@pytest.mark.parametrize("policy", POLICIES)
def test_the_migration_page_shows_the_policy(client, world, unworked_queue, policy):
    move = start_migration(
        world.vm, world.hosts[1], world.operator, speed=0, policy=policy
    )
    client.force_login(world.operator)
    page = client.get(move.get_absolute_url()).content.decode()
    assert f'data-policy="{policy}"' in page
    assert "(the source)" in page
    Migration.objects.filter(pk=move.pk).update(state=MigrationState.SUCCEEDED)


# --- Advice ----------------------------------------------------------------------


def throttle_wins(world) -> None:
    """A memory hammer whose moves converge only when the guest is throttled:
    Hyper-V 2008 R2 (a pass cap of 10) over a 300 Mbit/s link."""
    for host in world.hosts:
        host.hyperv_version = "2008 R2"
        host.save()
    vm = world.vm
    vm.memory_mib = 128
    vm.workload_profile = "memory_hammer"
    vm.write_rate = 40_000
    vm.working_set_pages = 32_000
    vm.save()
    world.cluster.link_bandwidth_mbps = 300
    world.cluster.save()


def test_the_advice_api_ranks_every_policy_under_every_option(world):
    throttle_wins(world)
    viewer = make_member(world.team, "viewer")
    response = token_client(viewer).get(f"/api/vms/{world.vm.pk}/advice/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["choices"]) == 12
    assert {(c["performance_option"], c["policy"]) for c in body["choices"]} == {
        (o, p) for o in ("tcpip", "compression", "smb") for p in POLICIES
    }
    best = body["choices"][body["recommended"]]
    assert (best["performance_option"], best["policy"]) == ("compression", "throttle")
    assert best["outcome"] == "converges" and best["guest_slowdown_pct"] > 0
    assert body["reason"].startswith("Compression with throttle: converges in")
    assert any(c["aborted"] for c in body["choices"])
    assert (body["downtime_limit_ms"], body["link_bandwidth_mbps"]) == (300, 300)


def test_the_advice_api_names_a_bad_downtime_limit_and_hides_other_teams_vms(world):
    client = token_client(make_member(world.team, "viewer"))
    response = client.get(f"/api/vms/{world.vm.pk}/advice/?downtime_limit_ms=-3")
    assert response.status_code == 400 and "downtime_limit_ms" in response.json()
    response = client.get(f"/api/vms/{world.vm.pk}/advice/?downtime_limit_ms=50")
    assert response.json()["downtime_limit_ms"] == 50
    stranger = token_client(make_member(make_world("RED").team, "operator"))
    assert stranger.get(f"/api/vms/{world.vm.pk}/advice/").status_code == 404


def test_the_vm_page_highlights_the_recommended_choice_for_operators_only(
    client, world
):
    throttle_wins(world)
    client.force_login(world.operator)
    page = client.get(world.vm.get_absolute_url()).content.decode()
    assert 'id="advice-table"' in page
    assert (
        '<tr data-option="compression" data-policy="throttle" data-outcome="converges"'
        ' class="recommended"' in page
    )
    assert "Recommended:</strong> Compression with throttle: converges in" in page
    assert 'name="policy" value="throttle"' in page
    assert 'id="start-recommended"' in page
    client.force_login(make_member(world.team, "viewer"))
    page = client.get(world.vm.get_absolute_url()).content.decode()
    assert 'id="advice-table"' in page and 'id="start-recommended"' not in page


# --- What-if replays ---------------------------------------------------------------


def inventory_state():
    from hvweb.inventory.models import Host, VirtualMachine

    return (
        list(VirtualMachine.objects.values_list("pk", "host_id", "power_state")),
        list(Host.objects.values_list("pk", "state", "memory_mib")),
    )


def done(replay, timeout=60.0):
    from hvweb.tests.test_moves import wait_for

    def over():
        replay.refresh_from_db()
        return replay if replay.state != "queued" else None

    return wait_for(over, timeout)


def test_a_replay_reruns_the_move_with_other_settings_and_touches_no_inventory(
    celery_worker, world
):
    hammer(world)
    move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    finished(move)
    assert move.state == MigrationState.SUCCEEDED
    before = inventory_state()
    client = token_client(world.operator)
    url = f"/api/migrations/{move.pk}/replay/"
    # The same settings give the same move: same seed, same spec.
    same = client.post(url, {}, format="json")
    assert same.status_code == 202, same.content
    assert same.json()["state"] == "queued"
    replay = done(move.replays.get(pk=same.json()["id"]))
    assert replay.state == "done", replay.error
    assert replay.result["passes"] == move.passes
    assert replay.result["bytes_sent"] == move.bytes_sent
    assert replay.result["downtime_s"] == pytest.approx(move.downtime_s)
    assert [p["pages_sent"] for p in replay.passes] == list(
        move.passes_done.values_list("pages_sent", flat=True)
    )
    # Escalate gives up on this guest; Compression under hyperv sends less.
    other = client.post(url, {"policy": "escalate"}, format="json").json()
    other = done(move.replays.get(pk=other["id"]))
    assert other.result["aborted"] and other.result["location"] == "source"
    smaller = client.post(
        url, {"performance_option": "compression", "link_bandwidth_mbps": 1000},
        format="json",
    ).json()  # fmt: skip
    smaller = done(move.replays.get(pk=smaller["id"]))
    assert smaller.result["bytes_sent"] < move.bytes_sent
    assert smaller.result["downtime_s"] < move.downtime_s
    assert inventory_state() == before
    listed = client.get(f"/api/migrations/{move.pk}/replays/").json()
    assert [r["id"] for r in listed] == [replay.pk, other.pk, smaller.pk]
    one = client.get(f"/api/migrations/{move.pk}/replays/{other.pk}/").json()
    assert one["policy"] == "escalate" and one["passes"][0]["pass_no"] == 1


def test_a_replay_names_each_bad_setting_and_waits_for_the_move_to_end(
    world, unworked_queue
):
    move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    client = token_client(world.operator)
    url = f"/api/migrations/{move.pk}/replay/"
    assert client.post(url, {}, format="json").status_code == 409
    Migration.objects.filter(pk=move.pk).update(state=MigrationState.SUCCEEDED)
    for body, field in [
        ({"policy": "yolo"}, "policy"),
        ({"performance_option": "pigeon"}, "performance_option"),
        ({"link_bandwidth_mbps": 0}, "link_bandwidth_mbps"),
        ({"link_bandwidth_mbps": "fast"}, "link_bandwidth_mbps"),
        ({"downtime_limit_ms": 10**9}, "downtime_limit_ms"),
    ]:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json(), response.json()
    viewer = token_client(make_member(world.team, "viewer"))
    assert viewer.post(url, {}, format="json").status_code == 403
    assert not move.replays.exists()


def test_the_replay_page_shows_both_side_by_side(client, world, unworked_queue):
    from hvweb.moves.models import Replay

    move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    Migration.objects.filter(pk=move.pk).update(state=MigrationState.SUCCEEDED)
    client.force_login(world.operator)
    page = client.get(move.get_absolute_url()).content.decode()
    assert 'id="replay-form"' in page
    response = client.post(
        f"/migrations/{move.pk}/replay/", {"performance_option": "smb"}
    )
    replay = Replay.objects.get()
    assert response.status_code == 302 and response.url == replay.get_absolute_url()
    page = client.get(replay.get_absolute_url()).content.decode()
    assert "A worker is running the replay" in page
    assert "with the performance option changed" in page
    assert 'id="side-by-side"' in page and 'id="replay-data"' in page
    # Code in static/js, data in json_script blocks only (as every page).
    assert not INLINE_SCRIPT.search(page)
    assert " style=" not in page and "<style" not in page
    response = client.post(f"/migrations/{move.pk}/replay/", {"policy": "nope"})
    page = client.get(response.url).content.decode()
    assert "policy: &#x27;nope&#x27; is not a convergence policy" in page


def test_an_administrator_sets_the_clusters_default_policy_in_the_admin(client, world):
    from hvweb.tests.test_inventory_admin import admin_url, form_data

    client.force_login(make_member(world.team, "administrator"))
    url = admin_url(type(world.cluster), "change", world.cluster.pk)
    data = form_data(client.get(url))
    assert data["default_policy"] == "hyperv"
    response = client.post(url, data | {"default_policy": "suspend-if-needed"})
    assert response.status_code == 302, response.content
    world.cluster.refresh_from_db()
    assert world.cluster.default_policy == "suspend-if-needed"
    response = client.post(url, data | {"default_policy": "nope"})
    assert response.status_code == 200  # the form again, with the error
    assert "default_policy" in response.context["adminform"].form.errors


def test_the_history_and_the_api_filter_moves_by_policy(client, world, unworked_queue):
    moves = {}
    for policy in ("throttle", "escalate"):
        moves[policy] = start_migration(
            world.vm, world.hosts[1], world.operator, speed=0, policy=policy
        )
        Migration.objects.filter(pk=moves[policy].pk).update(
            state=MigrationState.SUCCEEDED
        )
    api = token_client(world.operator)
    listed = api.get("/api/migrations/?policy=escalate").json()["results"]
    assert [m["id"] for m in listed] == [moves["escalate"].pk]
    assert api.get("/api/migrations/?policy=nope").status_code == 400
    client.force_login(world.operator)
    page = client.get("/migrations/?policy=throttle").content.decode()
    assert 'id="id_policy"' in page and "1 migration<" in page


def test_a_replay_whose_job_was_lost_is_sent_again_and_runs(
    celery_worker, world, redis_url
):
    """Redis restarted without the replay's job (the embedded one keeps
    nothing): the reaper sends the job again, to its own queue, and the
    suite's worker runs it."""
    import uuid

    import redis

    from conftest import REAPER_TIMEOUT_S, routed_to
    from hvweb.moves.replay import job_id, request_replay

    move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    finished(move)
    queue = f"unworked-{uuid.uuid4().hex[:8]}"
    with routed_to(queue):
        replay = request_replay(move, world.operator)
    broker = redis.Redis.from_url(redis_url)
    assert any(job_id(replay.pk).encode() in raw for raw in broker.lrange(queue, 0, -1))
    broker.delete(queue)  # the job is gone (and no worker reads that queue)
    replay = done(replay, REAPER_TIMEOUT_S + 30)
    assert replay.state == "done", replay.error
    assert replay.result["passes"] == move.passes
