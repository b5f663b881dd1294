"""One home per concept: a move's record, its frames, its options, its filters,
the vocabulary, the restricted querysets, and pages ready for a CSP.

Each test reads a concept through every way out (API, websocket, CLI, CSV,
pages) and holds them to one shape, so a field renamed in one place and not in
another fails here.
"""

from __future__ import annotations

import ast
import csv
import html
import io
import json
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from hvweb.api.serializers import FlatMigrationSerializer, NestedMigrationSerializer
from hvweb.api.testing import token_client
from hvweb.inventory import access, choices
from hvweb.inventory import models as inventory
from hvweb.inventory.testing import make_member, make_vm, make_world
from hvweb.moves import options
from hvweb.moves.choices import MigrationState
from hvweb.moves.frames import QUIET_KINDS, Frame
from hvweb.moves.management.commands._common import record
from hvweb.moves.models import Migration
from hvweb.moves.options import MoveOptions
from hvweb.moves.services import start_migration
from hvweb.moves.snapshot import cluster_snapshot, migration_snapshot
from migrator import rules
from migrator.hyperv import VERSIONS
from migrator.stages import Stage

ROOT = Path(__file__).resolve().parents[2]
REFS = ("vm", "cluster", "source", "destination")


@pytest.fixture
def world():
    w = make_world()
    w.operator = make_member(w.team, "operator", "otto")
    w.vm.memory_mib = 64
    w.vm.save()
    return w


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- A move's record ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_move_reads_the_same_in_the_api_the_websocket_the_cli_and_the_csv(
    client, world, unworked_queue
):
    move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    api = token_client(world.operator).get(f"/api/migrations/{move.pk}/").json()
    listed = token_client(world.operator).get("/api/migrations/").json()["results"]

    # The websocket's snapshot is the API's record, stages and passes alike.
    snap = json.loads(json.dumps(migration_snapshot(move.pk)))
    assert snap["migration"] == {
        k: v for k, v in api.items() if k not in ("stages", "passes")
    }
    assert listed == [snap["migration"]]
    assert (snap["stages"], snap["passes"]) == (api["stages"], api["passes"])
    assert api["pass_count"] is None and api["reserved_memory_mib"] == 64

    # The CLI prints the same record with its objects by name.
    printed = json.loads(json.dumps(record(move)))
    names = {"vm": "blue-web-1", "cluster": "CLU-BLUE", "source": "HV-BLUE-1",
             "destination": "HV-BLUE-2"}  # fmt: skip
    assert {k: printed[k] for k in REFS} == names
    assert {k: v for k, v in printed.items() if k not in ("passes", "error")} == {
        **snap["migration"],
        **names,
    }
    assert (printed["passes"], printed["error"]) == (api["pass_count"], None)

    # So does the history's CSV, flattened: no JSON objects, three predictions.
    client.force_login(world.operator)
    (row,) = csv_rows(client.get(reverse("moves:migration-export")))
    columns = [
        n for n in FlatMigrationSerializer().fields
        if n not in ("faults", "progress", "predicted", "result")
    ]  # fmt: skip
    assert list(row) == [
        *columns,
        "predicted_passes",
        "predicted_total_time_s",
        "predicted_downtime_s",
    ]
    assert {k: row[k] for k in REFS} == names
    assert row["pass_count"] == "" and row["state"] == "running"
    assert row["id"] == str(move.pk) and row["requested_by"] == "otto"
    assert row["created_at"] == api["created_at"]


@pytest.mark.django_db
def test_the_drain_reply_and_the_cluster_snapshot_give_moves_in_brief(
    world, unworked_queue
):
    client = token_client(world.operator)
    reply = client.post(
        f"/api/hosts/{world.hosts[0].pk}/drain/", {"speed": 0}, format="json"
    ).json()
    (move,) = reply["moves"]
    migration = Migration.objects.get(pk=move["id"])
    brief = json.loads(json.dumps(NestedMigrationSerializer(migration).data))
    assert move == brief
    assert list(move) == ["id", *REFS, "state", "stage"]
    assert move["cluster"] == {"id": world.cluster.pk, "name": "CLU-BLUE"}
    assert move["source"] == {"id": world.hosts[0].pk, "name": "HV-BLUE-1"}
    assert json.loads(json.dumps(cluster_snapshot(world.cluster.pk)))["migrations"] == [
        brief
    ]


# --- Frames -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_frames_have_one_shape_and_carry_the_hosts_memory_after_the_event(
    client, world, celery_worker
):
    from hvweb.tests.test_moves_streams import cluster_stream_of_a_move

    source, destination = world.hosts[0], world.hosts[1]
    snap, frames = cluster_stream_of_a_move(client, world)
    before = {h["id"]: h for h in snap["hosts"]}
    assert (before[source.pk]["used_mib"], before[destination.pk]["used_mib"]) == (
        64,
        0,
    )
    assert before[destination.pk]["reserved_mib"] == 0
    for f in frames:
        assert f.pop("type") == "event"
        assert Frame.__required_keys__ <= set(f) <= Frame.__annotations__.keys()
        assert ("hosts" in f) is (f["kind"] not in QUIET_KINDS)

    def memory(frame) -> dict[int, tuple[int, int]]:
        return {h["id"]: (h["used_mib"], h["reserved_mib"]) for h in frame["hosts"]}

    first, *_ = frames
    assert first["kind"] == "dispatched" and first["cancellable"] is True
    assert memory(first) == {source.pk: (64, 0), destination.pk: (0, 64)}
    (online,) = [
        f
        for f in frames
        if f["kind"] == "stage_started" and f["data"]["stage"] == "online"
    ]
    assert online["switched_over"] is True and online["cancellable"] is False
    assert memory(online) == {source.pk: (0, 0), destination.pk: (64, 0)}
    assert memory(frames[-1]) == {source.pk: (0, 0), destination.pk: (64, 0)}
    assert frames[-1]["state"] == "succeeded"


# --- Move options -------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_options_get_movoptions_message_from_the_api_the_page_and_the_cli(
    client, world, unworked_queue, capsys
):
    with pytest.raises(ValidationError) as refused:
        MoveOptions.parse(world.cluster, downtime_limit_ms=-1, speed=5000)
    expected = refused.value.message_dict
    api = token_client(world.operator).post(
        "/api/migrations/",
        {"vm": world.vm.pk, "destination": world.hosts[1].pk,
         "downtime_limit_ms": -1, "speed": 5000},
        format="json",
    )  # fmt: skip
    assert api.status_code == 400
    assert api.json() == expected
    client.force_login(world.operator)
    page = client.get(
        reverse("moves:vm-prediction", args=[world.vm.pk]),
        {"downtime_limit_ms": "-1", "speed": "5000"},
    )
    assert page.status_code == 400 and page.json()["errors"] == expected
    err = io.StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "live_migrate", world.vm.name, world.hosts[1].name,
            "--downtime-limit", "-1", "--speed", "5000", stderr=err,
        )  # fmt: skip
    assert err.getvalue().splitlines() == [
        f"{field}: {' '.join(messages)}" for field, messages in expected.items()
    ]
    assert not Migration.objects.exists()


@pytest.mark.django_db
def test_the_schema_and_the_vm_page_show_moveoptions_bounds(client, world):
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    props = schema["MoveOptionsRequest"]["properties"]
    limit = props["downtime_limit_ms"]
    assert (limit["minimum"], limit["maximum"]) == (0, options.MAX_DOWNTIME_LIMIT_MS)
    assert props["speed"]["maximum"] == options.MAX_SPEED
    enum = props["performance_option"]["$ref"].rsplit("/", 1)[1]
    assert schema[enum]["enum"] == choices.PerformanceOption.values
    faults = schema["FaultsRequest"]["properties"]
    for name, (low, high) in options.FAULT_BOUNDS.items():
        assert (faults[name]["minimum"], faults[name]["maximum"]) == (low, high)
    client.force_login(world.operator)
    body = client.get(world.vm.get_absolute_url()).content.decode()
    assert f'max="{options.MAX_DOWNTIME_LIMIT_MS}"' in body
    assert 'max="1000"' in body
    assert f'value="{options.DEFAULT_DOWNTIME_LIMIT_MS}"' in body
    assert Migration._meta.get_field("downtime_limit_ms").default == 300


# --- Filters ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_history_and_the_api_filter_alike(client, world, unworked_queue):
    other_vm = make_vm(world.hosts[2], "blue-db-1", csv=world.csv, memory_mib=64)
    alice = make_member(world.team, "operator", "alice")
    mine = start_migration(world.vm, world.hosts[1], alice, speed=0)
    theirs = start_migration(other_vm, world.hosts[0], world.operator, speed=0)
    api = token_client(world.operator)
    client.force_login(world.operator)

    def by_api(**params) -> set[int]:
        response = api.get("/api/migrations/", params)
        assert response.status_code == 200, response.content
        return {m["id"] for m in response.json()["results"]}

    def by_page(**params) -> set[int]:
        response = client.get(reverse("moves:migration-list"), params)
        assert response.status_code == 200
        return {m.pk for m in response.context["migrations"]}

    today = mine.created_at.date().isoformat()
    for params, expected in [
        ({"vm": "DB"}, {theirs.pk}),
        ({"vm": str(world.vm.pk)}, {mine.pk}),
        ({"user": "ALICE"}, {mine.pk}),
        ({"since": today, "until": today}, {mine.pk, theirs.pk}),
        ({"cluster": str(world.cluster.pk), "state": "running"}, {mine.pk, theirs.pk}),
        ({"destination": str(world.hosts[0].pk)}, {theirs.pk}),
    ]:
        assert by_api(**params) == by_page(**params) == expected, params
    red = make_world("RED")
    for cluster in (red.cluster.pk, 999_999):  # another team's and none alike
        response = api.get("/api/migrations/", {"cluster": cluster})
        assert response.status_code == 400
        assert "Select a valid choice" in response.json()["cluster"][0]
    response = api.get("/api/migrations/", {"since": today, "until": "2000-01-01"})
    assert response.json() == {"until": ["must be on or after the From date."]}


# --- Vocabulary ---------------------------------------------------------------------


def test_every_inventory_choice_is_migrators_vocabulary_with_labels():
    for choice, values in [
        (choices.StorageKind, rules.STORAGE_KINDS),
        (choices.PerformanceOption, rules.PERFORMANCE_OPTIONS),
        (choices.HyperVVersion, VERSIONS),
        (choices.CpuVendor, rules.CPU_VENDORS),
        (choices.DriveLetter, rules.DRIVE_LETTERS),
        (choices.HostState, rules.HOST_STATES),
        (choices.CsvState, rules.CSV_STATES),
        (choices.PowerState, rules.POWER_STATES),
        (choices.AutomaticStartAction, rules.AUTOMATIC_START_ACTIONS),
        (choices.DiskKind, rules.DISK_KINDS),
        (choices.WorkloadProfile, rules.WORKLOAD_PROFILES),
    ]:
        assert tuple(choice.values) == tuple(values), choice
    assert choices.CpuVendor.AMD.label == rules.CPU_VENDOR_NAMES["amd"]
    assert choices.AutomaticStartAction.NOTHING.label == "Nothing"
    with pytest.raises(TypeError, match="values \\['b'\\] without a label"):
        choices.vocabulary("Odd", ("a", "b"), {"a": ("A", "green")})


@pytest.mark.django_db
def test_memory_is_held_by_the_power_states_migrator_names(world):
    for state in rules.POWER_STATES:
        make_vm(world.hosts[2], f"vm-{state}", csv=world.csv, power_state=state)
    held = inventory.VirtualMachine.objects.filter(host=world.hosts[2]).holding_memory()
    assert sorted(vm.power_state for vm in held) == sorted(rules.MEMORY_HOLDING_STATES)


# --- Pages: one constants block, no inline code or style ----------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")


@pytest.mark.django_db
def test_pages_carry_one_constants_block_and_no_inline_script_or_style(
    client, world, unworked_queue
):
    move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    bodies = {"login": client.get(reverse("login")).content.decode()}
    client.force_login(world.operator)
    for name, url in [
        ("clusters", reverse("inventory:cluster-list")),
        ("cluster", world.cluster.get_absolute_url()),
        ("host", world.hosts[0].get_absolute_url()),
        ("vm", make_vm(world.hosts[0], "blue-2", csv=world.csv).get_absolute_url()),
        ("migration", move.get_absolute_url()),
        ("history", reverse("moves:migration-list")),
    ]:
        response = client.get(url)
        assert response.status_code == 200, name
        bodies[name] = response.content.decode()
    for name, body in bodies.items():
        assert not INLINE_SCRIPT.search(body), name
        assert " style=" not in body and "<style" not in body, name
        blocks = re.findall(
            r'<script id="hvweb-constants" type="application/json">(.*?)</script>',
            body,
        )
        assert len(blocks) == 1 and body.count("application/json") == 1, name
        assert "js/common.js" in body, name
    constants = json.loads(html.unescape(blocks[0]))
    assert constants["active_states"] == list(MigrationState.active())
    assert [s["stage"] for s in constants["stages"] if s["cancellable"]] == [
        s.value for s in Stage if s.cancellable
    ]
    assert constants["urls"]["vm"] == reverse("inventory:vm", args=[0])
    for script in ("live.js", "clusters.js", "migration.js", "vm.js", "common.js"):
        code = (ROOT / "static" / "js" / script).read_text()
        # The rules come from the server: no script lists the states again.
        assert '["queued", "running"]' not in code, script
        assert '["running", "paused"]' not in code, script


# --- Querysets restricted as a manager method ---------------------------------------


@pytest.mark.django_db
def test_every_team_owned_model_restricts_itself_like_access(world, unworked_queue):
    start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    red = make_world("RED")
    start_migration(red.vm, red.hosts[1], make_member(red.team, "operator"), speed=0)
    owned = ("Team", "Membership", "Cluster", "Host", "ClusterSharedVolume",
             "VirtualMachine", "VirtualDisk", "NetworkAdapter")  # fmt: skip
    models = [getattr(inventory, name) for name in owned] + [Migration]
    for role in ("viewer", "operator", "administrator"):
        user = make_member(world.team, role, f"{role}-r")
        for model in models:
            for action in access.ACTIONS:
                mine = model.objects.restrict(user, action)
                assert set(mine) == set(
                    access.restrict(model.objects.all(), user, action)
                )
                if action == "view":
                    assert mine.exists() and mine.count() < model.objects.count()


# --- No import cycle between the models and the readiness queries ------------------


def _imports(module: str) -> set[str]:
    """The hvweb modules ``module`` imports when it runs (at any depth of its
    code; not the imports for type checkers only)."""
    path = ROOT / Path(*module.split(".")).with_suffix(".py")
    package = module.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([package, base]) if base else package
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _exists(candidate) else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("hvweb.") and _exists(m)}


def _exists(module: str) -> bool:
    return (ROOT / Path(*module.split(".")).with_suffix(".py")).exists()


def test_the_inventory_models_reach_no_module_that_imports_them():
    seen, todo = set(), ["hvweb.inventory.models"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_imports(module))
    assert "hvweb.inventory.models" not in set().union(
        *(_imports(m) for m in seen - {"hvweb.inventory.models"})
    ), seen
    assert "hvweb.inventory.snapshots" not in seen
    tree = ast.parse((ROOT / "hvweb/inventory/models.py").read_text())
    nested = [
        n
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        for n in ast.walk(f)
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    assert nested == []
