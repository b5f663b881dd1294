"""The dashboard's pages rendered by Django: what each role sees and may do.

The live parts (websockets, Plotly) are driven in ``test_browser_dashboard``;
these tests check the server-rendered page, the refusals and the history.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hvweb.inventory.testing import make_host, make_member, make_vm, make_world
from hvweb.moves.models import Migration
from hvweb.moves.runner import build_spec
from hvweb.moves.services import (
    current_failures,
    ranked_destinations,
    start_migration,
)
from migrator.predict import predict
from migrator.units import format_duration

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def other():
    return make_world("RED")


def body_of(response) -> str:
    return html.unescape(response.content.decode())


def get(client, url, **params):
    response = client.get(url, params)
    return response, body_of(response)


def between(body: str, start: str, end: str) -> str:
    """The part of ``body`` from the first ``start`` to the next ``end``."""
    head = body.index(start)
    return body[head : body.index(end, head)]


def record(world, user, state="succeeded", *, vm=None, destination=None, **fields):
    """A stored move as the runner leaves one (no worker involved)."""
    vm = vm or world.vm
    return Migration.objects.create(
        vm=vm,
        cluster=world.cluster,
        source=vm.host,
        destination=destination or world.hosts[1],
        requested_by=user,
        performance_option="compression",
        speed=0,
        reserved_memory_mib=vm.memory_mib,
        state=state,
        **fields,
    )


# --- Clusters overview ---------------------------------------------------------------


def test_the_overview_draws_each_clusters_hosts_with_their_vms_and_memory(
    client, world, other
):
    make_vm(world.hosts[1], "blue-db-1", csv=world.csv, memory_mib=4096)
    client.force_login(make_member(world.team, "viewer"))
    response, body = get(client, "/")
    assert response.status_code == 200
    board = between(body, f'data-cluster-board="{world.cluster.pk}"', "</section>")
    host_1 = between(board, f'id="host-{world.hosts[0].pk}"', "</article>")
    host_2 = between(board, f'id="host-{world.hosts[1].pk}"', "</article>")
    assert "blue-web-1" in host_1 and "1024 of 16384 MiB" in host_1
    assert "blue-db-1" in host_2 and "4096 of 16384 MiB" in host_2
    assert "blue-web-1" not in host_2
    assert "Migrations in flight" in board and "None." in board
    assert "CLU-RED" not in body and "red-web-1" not in body  # another team's


def test_the_overview_lists_moves_in_flight_and_reserves_memory_on_the_destination(
    client, world
):
    operator = make_member(world.team, "operator")
    move = start_migration(world.vm, world.hosts[2], operator, speed=0)
    client.force_login(make_member(world.team, "viewer", "watcher"))
    _, body = get(client, "/")
    flight = between(body, "data-moves", "</div>")
    assert f"#{move.pk} blue-web-1" in flight
    assert "HV-BLUE-1 → HV-BLUE-3" in flight
    destination = between(body, f'id="host-{world.hosts[2].pk}"', "</article>")
    assert "+ 1024 MiB reserved" in destination
    vm_row = re.search(rf'<li data-vm="{world.vm.pk}" class="([^"]+)"', body)
    assert "moving" in vm_row.group(1)


def test_the_cluster_page_has_the_same_live_board(client, world):
    client.force_login(make_member(world.team, "viewer"))
    _, body = get(client, world.cluster.get_absolute_url())
    assert f'data-cluster-board="{world.cluster.pk}"' in body
    assert "js/clusters.js" in body and "js/live.js" in body


# --- The VM page: destinations, prediction, refusals --------------------------------


def test_destinations_are_ranked_ready_first_then_by_free_memory_blocked_say_why(
    client, world
):
    make_vm(world.hosts[1], "blue-big-1", csv=world.csv, memory_mib=8192)
    make_host(world.cluster, "HV-BLUE-AMD", cpu_vendor="amd", memory_mib=65_536)
    make_host(world.cluster, "HV-BLUE-DOWN", state="down")
    client.force_login(make_member(world.team, "operator"))
    response, body = get(client, world.vm.get_absolute_url())
    ranked = [(d.host.name, d.status) for d in response.context["destinations"]]
    # The AMD host has the most free memory but is blocked; 3 is freer than 2.
    assert ranked[:2] == [("HV-BLUE-3", "ready"), ("HV-BLUE-2", "ready")]
    assert {name for name, status in ranked[2:]} == {"HV-BLUE-AMD", "HV-BLUE-DOWN"}
    assert all(status == "blocked" for _, status in ranked[2:])
    listing = between(body, 'id="destinations"', "</fieldset>")
    assert listing.index("HV-BLUE-3") < listing.index("HV-BLUE-2")
    amd = between(listing, 'data-host="HV-BLUE-AMD"', "</ul>")
    assert "disabled" in amd and "CPU_VENDOR" in amd and "AMD" in amd
    assert "16.0 GiB free" in listing and "8.00 GiB free" in listing  # binary units


def test_the_ranking_reports_what_starting_the_move_would_check(world):
    """The page evaluates the cluster once; it must agree with the service that
    decides, host by host, under load (reservations, moves under way, memory)."""
    operator = make_member(world.team, "operator")
    other_vm = make_vm(world.hosts[1], "blue-db-1", csv=world.csv, memory_mib=2048)
    start_migration(other_vm, world.hosts[2], operator, speed=0)  # load on 2 and 3
    make_host(world.cluster, "HV-BLUE-SMALL", memory_mib=512)  # no room for 1 GiB
    make_host(world.cluster, "HV-BLUE-AMD", cpu_vendor="amd")
    ranked = ranked_destinations(world.vm)
    assert len(ranked) == 4
    for destination in ranked:
        expected = current_failures(world.vm, destination.host)
        assert destination.failures == expected, destination.host.name
    by_name = {d.host.name: d for d in ranked}
    assert by_name["HV-BLUE-3"].free_mib == 16384 - 2048  # reserved by the move
    assert by_name["HV-BLUE-SMALL"].status == "blocked"


def test_the_vm_page_shows_the_predicted_passes_time_and_downtime(client, world):
    client.force_login(make_member(world.team, "operator"))
    response, body = get(client, world.vm.get_absolute_url())
    expected = predict(
        build_spec(world.vm, world.hosts[0], world.cluster,
                   performance_option="compression", downtime_limit_ms=300)
    )  # fmt: skip
    box = between(body, 'id="prediction"', "</section>")
    assert f'data-p="passes">{expected.passes}<' in box
    assert f"{format_duration(expected.total_time_s)} simulated" in box
    assert f'data-p="downtime">{format_duration(expected.downtime_s)}<' in box
    assert expected.reason in box
    assert 'id="migrate"' in body and "disabled" not in between(
        body, 'id="migrate"', ">"
    )


def test_the_prediction_follows_the_options_and_names_a_bad_field(client, world):
    client.force_login(make_member(world.team, "operator"))
    url = reverse("moves:vm-prediction", args=[world.vm.pk])
    loose = client.get(url, {"downtime_limit_ms": 300, "speed": 2}).json()
    tight = client.get(url, {"downtime_limit_ms": 1, "speed": 2}).json()
    assert tight["passes"] >= loose["passes"]
    assert tight["downtime_s"] <= loose["downtime_s"]
    assert loose["wall_time_s"] == pytest.approx(loose["total_time_s"] / 2)
    bad = client.get(url, {"downtime_limit_ms": "soon", "performance_option": "x"})
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"downtime_limit_ms", "performance_option"}


def test_as_fast_as_the_machine_can_is_a_choice_of_its_own(client, world):
    client.force_login(make_member(world.team, "operator"))
    _, body = get(client, world.vm.get_absolute_url())
    form = between(body, 'id="migrate-form"', "</form>")
    assert 'value="unpaced"' in form and "as fast as the machine can" in form
    assert "0 means no limit" in form  # the downtime limit says what 0 means
    assert "0 runs unpaced" not in form
    url = reverse("moves:vm-prediction", args=[world.vm.pk])
    unpaced = client.get(url, {"speed": "5", "pace": "unpaced"}).json()
    assert unpaced["speed"] == 0 and unpaced["wall_time_s"] is None
    paced = client.get(url, {"speed": "5", "pace": "paced"}).json()
    assert paced["speed"] == 5


def test_a_viewer_is_told_the_page_is_read_only(client, world):
    client.force_login(make_member(world.team, "viewer"))
    _, body = get(client, world.vm.get_absolute_url())
    hint = between(body, 'id="read-only"', "</section>")
    assert "read-only" in hint and "operator or administrator role" in hint


def test_a_vm_already_moving_says_so_once_in_the_move_form(
    client, world, unworked_queue
):
    operator = make_member(world.team, "operator")
    start_migration(world.vm, world.hosts[1], operator, speed=0)
    client.force_login(operator)
    response, body = get(client, world.vm.get_absolute_url())
    note = between(body, 'id="vm-blocked-note"', "</div>")
    (shared,) = response.context["shared_here"]  # not a rule of the matrix
    assert f"{shared.code}</code> {shared.message}" in note
    assert "see <a" not in note
    assert 'id="vm-failures"' not in body  # the rules themselves all hold


def test_a_viewer_is_told_the_migration_page_is_read_only(
    client, world, unworked_queue
):
    move = start_migration(
        world.vm, world.hosts[1], make_member(world.team, "operator"), speed=0
    )
    client.force_login(make_member(world.team, "viewer"))
    _, body = get(client, move.get_absolute_url())
    assert 'id="read-only"' in body and "operator or administrator role" in body
    assert 'id="cancel"' not in body


def test_a_viewer_sees_no_migrate_control_and_a_forged_post_is_refused(client, world):
    client.force_login(make_member(world.team, "viewer"))
    _, body = get(client, world.vm.get_absolute_url())
    assert "migrate-form" not in body and "Live migrate" not in body
    assert 'id="readiness"' in body  # the matrix is still there to read
    url = reverse("moves:migrate-vm", args=[world.vm.pk])
    assert client.post(url, {"destination": world.hosts[1].pk}).status_code == 403
    assert not Migration.objects.exists()


def test_another_teams_vm_cannot_be_moved_or_predicted(client, world, other):
    client.force_login(make_member(world.team, "operator"))
    url = reverse("moves:migrate-vm", args=[other.vm.pk])
    assert client.post(url, {"destination": other.hosts[1].pk}).status_code == 404
    pred = reverse("moves:vm-prediction", args=[other.vm.pk])
    assert client.get(pred).status_code == 404
    # Nor may a VM of one's own be sent to another team's host.
    mine = reverse("moves:migrate-vm", args=[world.vm.pk])
    response = client.post(mine, {"destination": other.hosts[1].pk}, follow=True)
    assert "destination: choose a host" in body_of(response)
    assert not Migration.objects.exists()


def test_an_operator_starts_a_move_and_lands_on_its_page(client, world):
    client.force_login(make_member(world.team, "operator"))
    response = client.post(
        reverse("moves:migrate-vm", args=[world.vm.pk]),
        {"destination": world.hosts[1].pk, "downtime_limit_ms": "50", "speed": "2"},
    )
    move = Migration.objects.get()
    assert response.status_code == 302
    assert response["Location"] == move.get_absolute_url()
    assert (move.downtime_limit_ms, move.speed) == (50, 2.0)


def test_a_refused_move_shows_the_rule_and_the_fix_next_to_the_control(client, world):
    amd = make_host(world.cluster, "HV-BLUE-AMD", cpu_vendor="amd")
    client.force_login(make_member(world.team, "operator"))
    response = client.post(
        reverse("moves:migrate-vm", args=[world.vm.pk]),
        {"destination": amd.pk},
        follow=True,
    )
    body = body_of(response)
    form = between(body, 'id="migrate-form"', "</form>")
    message = between(form, 'data-for="migrate"', "</p>")
    assert "CPU_VENDOR" in message and "HV-BLUE-1 has an Intel processor" in message
    top = between(body, "<main>", "<h1>")
    assert "CPU_VENDOR" not in top  # beside the control, not at the top as well
    assert not Migration.objects.exists()


def test_a_bad_option_names_its_field_next_to_the_control(client, world):
    client.force_login(make_member(world.team, "operator"))
    response = client.post(
        reverse("moves:migrate-vm", args=[world.vm.pk]),
        {"destination": world.hosts[1].pk, "downtime_limit_ms": "-5"},
        follow=True,
    )
    form = between(body_of(response), 'id="migrate-form"', "</form>")
    assert "downtime_limit_ms: must be a whole number of milliseconds" in form
    assert not Migration.objects.exists()


def test_a_vm_no_host_can_take_has_its_migrate_button_disabled(client, world):
    vm = make_vm(world.hosts[0], "local-1", csv=None, highly_available=False)
    client.force_login(make_member(world.team, "operator"))
    _, body = get(client, vm.get_absolute_url())
    button = between(body, 'id="migrate"', ">")
    assert "disabled" in button
    assert "No host of CLU-BLUE can take local-1 now" in body
    # HIGHLY_AVAILABLE is the VM's own: said once above the matrix, which
    # gives the rule one cell across its hosts instead of one per host.
    failures = between(body, 'id="vm-failures"', "</div>")
    assert failures.count('<code class="rule-code">HIGHLY_AVAILABLE') == 1
    assert "local-1 is not highly available" in failures
    assert body.count("local-1 is not highly available") == 1
    assert body.count('<td class="fail shared" colspan="2"') == 1
    assert body.count('<td class="fail" ') == 0
    # No figures are offered for a move that cannot happen.
    assert 'data-p="passes"' not in body and 'id="no-prediction"' in body


def test_hosts_are_ranked_by_their_own_fitness_when_the_vm_itself_fails(client, world):
    vm = make_vm(world.hosts[0], "local-2", csv=None, highly_available=False)
    make_host(world.cluster, "HV-BLUE-AMD", cpu_vendor="amd", memory_mib=65_536)
    client.force_login(make_member(world.team, "operator"))
    response, body = get(client, vm.get_absolute_url())
    ranked = [(d.host.name, d.own_status) for d in response.context["destinations"]]
    # Every host refuses the VM; the AMD one, freest but unfit itself, is last.
    assert ranked == [
        ("HV-BLUE-2", "ready"),
        ("HV-BLUE-3", "ready"),
        ("HV-BLUE-AMD", "blocked"),
    ]  # 2 and 3 have as much free memory: by name
    listing = between(body, 'id="destinations"', "</fieldset>")
    assert "HIGHLY_AVAILABLE" not in listing and "CPU_VENDOR" in listing
    assert listing.count("host fits") == 2


def test_configure_ha_refusal_is_shown_beside_the_button(client, world):
    vm = make_vm(world.hosts[1], "blocked-1", csv=None, highly_available=False)
    client.force_login(make_member(world.team, "operator"))
    response = client.post(
        reverse("inventory:vm-configure-ha", args=[vm.pk]), follow=True
    )
    config = between(body_of(response), 'id="config-title"', "</section>")
    assert "blocked-1 was not configured as highly available." in config
    assert "HIGHLY_AVAILABLE" in config


# --- The migration page --------------------------------------------------------------


def test_the_migration_page_shows_seven_stages_and_a_cancel_for_operators(
    client, world
):
    operator = make_member(world.team, "operator")
    move = start_migration(world.vm, world.hosts[1], operator, speed=0)
    client.force_login(operator)
    response, body = get(client, move.get_absolute_url())
    assert response.status_code == 200
    timeline = between(body, 'id="timeline"', "</ol>")
    assert timeline.count("<li ") == 7
    for label in ("Configuration transfer", "Transfer of memory pages",
                  "VM brought online", "Network re-direction"):  # fmt: skip
        assert label in timeline
    assert 'id="cancel"' in body
    for chart in ("chart-passes", "chart-bytes", "chart-blackout"):
        assert f'id="{chart}"' in body
    # Plotly.js from here, preloaded and run once the move is drawn.
    assert 'href="/static/vendor/plotly.min.js" as="script"' in body
    assert 'data-plotly="/static/vendor/plotly.min.js"' in body
    # Nothing is loaded from elsewhere (the CSRF token may spell "cdn" by chance).
    remote = [u for u in re.findall(r'(?:src|href)="([^"]*)"', body)
              if u.startswith(("http:", "https:", "//"))]  # fmt: skip
    assert remote == []


def test_a_viewer_sees_no_cancel_and_a_forged_cancel_is_refused(client, world):
    move = start_migration(
        world.vm, world.hosts[1], make_member(world.team, "operator"), speed=0
    )
    client.force_login(make_member(world.team, "viewer"))
    _, body = get(client, move.get_absolute_url())
    assert 'id="cancel"' not in body
    assert client.post(reverse("moves:cancel", args=[move.pk])).status_code == 403
    move.refresh_from_db()
    assert not move.cancel_requested and move.active


def test_an_operator_cancels_a_running_move_from_its_page(client, world):
    operator = make_member(world.team, "operator")
    move = start_migration(world.vm, world.hosts[1], operator, speed=0)
    client.force_login(operator)
    response = client.post(reverse("moves:cancel", args=[move.pk]))
    assert response.status_code == 302
    move.refresh_from_db()
    assert move.cancel_requested


def test_a_refused_cancel_shows_the_reason_beside_the_control(client, world):
    operator = make_member(world.team, "operator")
    move = record(world, operator, state="succeeded")
    client.force_login(operator)
    response = client.post(reverse("moves:cancel", args=[move.pk]), follow=True)
    body = body_of(response)
    message = between(body, 'data-for="cancel"', "</p>")
    assert "MIGRATION_FINISHED" in message and "already ended" in message
    assert 'id="cancel"' not in body  # an ended move offers no cancel


def test_another_teams_migration_page_is_404(client, world, other):
    move = record(other, make_member(other.team, "operator"))
    client.force_login(make_member(world.team, "administrator"))
    assert client.get(move.get_absolute_url()).status_code == 404
    assert client.post(reverse("moves:cancel", args=[move.pk])).status_code == 404


# --- History -------------------------------------------------------------------------


@pytest.fixture
def history(world, other):
    alice = make_member(world.team, "operator", "alice")
    bob = make_member(world.team, "operator", "bob")
    db = make_vm(world.hosts[0], "blue-db-1", csv=world.csv)
    old = record(world, alice, "succeeded", passes=3, downtime_s=0.01)
    Migration.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=10)
    )
    moves = {
        "old": old,
        "failed": record(world, bob, "failed", vm=db, error_code="LINK_FAILURE"),
        "cancelled": record(world, alice, "cancelled", vm=db),
        "red": record(other, make_member(other.team, "operator", "carol")),
    }
    return moves


def listed(client, **params) -> set[int]:
    response = client.get(reverse("moves:migration-list"), params)
    assert response.status_code == 200
    return {m.pk for m in response.context["migrations"]}


def test_history_lists_ones_teams_moves_and_filters_them(client, world, history):
    client.force_login(make_member(world.team, "viewer"))
    h = history
    mine = {h["old"].pk, h["failed"].pk, h["cancelled"].pk}
    assert listed(client) == mine  # never another team's
    assert listed(client, cluster=world.cluster.pk) == mine
    assert listed(client, vm="DB") == {h["failed"].pk, h["cancelled"].pk}
    assert listed(client, state="failed") == {h["failed"].pk}
    assert listed(client, user="alice") == {h["old"].pk, h["cancelled"].pk}
    today = timezone.now().date()
    assert listed(client, since=today.isoformat()) == mine - {h["old"].pk}
    week_ago = (today - timedelta(days=7)).isoformat()
    assert listed(client, until=week_ago) == {h["old"].pk}


def test_history_refuses_a_bad_filter_naming_it(client, world, history):
    client.force_login(make_member(world.team, "viewer"))
    other_cluster = history["red"].cluster_id
    response = client.get(reverse("moves:migration-list"), {"cluster": other_cluster})
    assert "Cluster: Select a valid choice" in body_of(response)
    assert list(response.context["migrations"]) == []
    response = client.get(
        reverse("moves:migration-list"), {"since": "2026-02-02", "until": "2026-01-01"}
    )
    assert "To: must be on or after the From date." in body_of(response)


def test_history_exports_the_filtered_rows_as_csv(client, world, history):
    client.force_login(make_member(world.team, "viewer"))
    response = client.get(reverse("moves:migration-export"), {"state": "failed"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["id"], r["vm"], r["requested_by"], r["error_code"]) for r in rows] == [
        (str(history["failed"].pk), "blue-db-1", "bob", "LINK_FAILURE")
    ]
    everything = client.get(reverse("moves:migration-export"))
    ids = {r["id"] for r in csv.DictReader(io.StringIO(
        b"".join(everything.streaming_content).decode()))}  # fmt: skip
    assert str(history["red"].pk) not in ids and len(ids) == 3


def test_the_csv_export_defuses_spreadsheet_formulas(client, world):
    operator = make_member(world.team, "operator")
    record(world, operator, "failed", error_code="X", error_message="=HYPERLINK(1)")
    client.force_login(operator)
    text = b"".join(
        client.get(reverse("moves:migration-export")).streaming_content
    ).decode()
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["error_message"] == "'=HYPERLINK(1)"


# --- The console's spec is the calibrated one -----------------------------------------


@pytest.mark.parametrize("option", ["tcpip", "compression", "smb"])
def test_the_console_builds_the_spec_the_calibration_table_measures(option):
    """What the move form predicts and the worker runs for a demo VM is the spec
    ``python -m migrator calibrate`` holds the model to: every performance
    option, not only whether it compresses."""
    from django.core.management import call_command

    from hvweb.inventory.models import VirtualMachine
    from migrator.calibrate import DEMO_PROFILES, demo_spec

    call_command("seed_demo", verbosity=0)
    for profile in DEMO_PROFILES:
        vm = VirtualMachine.objects.select_related("host__cluster").get(name=profile.vm)
        console = build_spec(
            vm, vm.host, vm.host.cluster, performance_option=option,
            downtime_limit_ms=300,
        )  # fmt: skip
        assert console == demo_spec(profile, option), profile.name
