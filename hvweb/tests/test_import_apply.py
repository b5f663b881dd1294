"""Importing into the inventory: dry run, apply, identity, round trip, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command

from hvweb.inventory import demo, snapshots
from hvweb.inventory.importers import psjson
from hvweb.inventory.importers.apply import run_import
from hvweb.inventory.importers.document import ImportRefused
from hvweb.inventory.importers.plan import ImportOptions
from hvweb.inventory.models import (
    Cluster,
    ClusterSharedVolume,
    Host,
    NetworkAdapter,
    Team,
    VirtualDisk,
    VirtualMachine,
)
from hvweb.inventory.readiness_report import build_report
from hvweb.inventory.testing import make_member, make_world

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "hyperv"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def counts() -> dict[str, int]:
    models = (Cluster, Host, ClusterSharedVolume, VirtualMachine, VirtualDisk,
              NetworkAdapter, LogEntry)  # fmt: skip
    return {m.__name__: m.objects.count() for m in models}


@pytest.fixture
def team():
    return Team.objects.create(name="Imports")


def imported(name: str, team: Team, **options) -> Cluster:
    result = run_import(
        fixture(name), team=team, dry_run=False, file_name=name,
        options=ImportOptions(**options),
    )  # fmt: skip
    assert result.applied
    return result.cluster


# --- Every seed rule fails for some fixture, with its fix ---------------------------

RULE_FIXTURES = [
    # fixture, VM, rule, the fix command (None: no command can fix it)
    ("legacy-2008-node.json", "old-web-1", "HYPERV_VERSION", None),
    ("ps7-enums-as-strings.json", "west-web-1", "FAILOVER_CLUSTER",
     "Add-ClusterNode -Cluster CLU-WEST -Name HV-W4"),
    ("ps7-enums-as-strings.json", "west-web-1", "SHARED_STORAGE", None),
    ("amd-node.json", "mixed-web-1", "CPU_VENDOR", None),
    ("local-storage.json", "app-local", "HIGHLY_AVAILABLE",
     "Move-VMStorage -ComputerName HV-L1 -VMName app-local -DestinationStoragePath "
     "C:\\ClusterStorage\\Volume1\\app-local"),
    ("local-storage.json", "app-local", "HIGHLY_AVAILABLE",
     "Add-ClusterVirtualMachineRole -Cluster CLU-LOCAL -VMName app-local"),
    ("ps51-numbers-utf16.json", "east-app-1", "AUTO_START_ACTION",
     "Set-VM -ComputerName HV-E1 -Name east-app-1 -AutomaticStartAction Nothing"),
    ("d-boot-node.json", "drives-web-1", "BOOT_DRIVE", None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "vm_name", "code", "command"), RULE_FIXTURES)
def test_each_seed_rule_fails_for_a_fixture_with_its_fix(
    team, name, vm_name, code, command
):
    cluster = imported(name, team)
    report = build_report(cluster)
    row = next(r for r in report.rows if r.vm.name == vm_name)
    failing = {fr.failure.code: fr for fr in row.rules}
    assert code in failing, [fr.failure.code for fr in row.rules]
    fixes = failing[code].fixes
    texts = [c.text for f in fixes for c in f.commands]
    if command is None:
        assert texts == [] and fixes[0].note.startswith("No command")
    else:
        assert command in texts
        assert command in report.script()


def test_every_rule_is_covered_by_the_fixtures():
    from migrator.rules import RULES

    assert {code for _, _, code, _ in RULE_FIXTURES} == {r.code for r in RULES}


def test_the_ps1_carries_whatif_only_where_the_cmdlet_has_it(team):
    script = build_report(imported("local-storage.json", team)).script()
    move = (
        "Move-VMStorage -ComputerName HV-L1 -VMName app-local "
        "-DestinationStoragePath C:\\ClusterStorage\\Volume1\\app-local -WhatIf"
    )
    assert move in script
    assert (
        "# Add-ClusterVirtualMachineRole -Cluster CLU-LOCAL -VMName app-local\r\n"
        in script
    )
    assert (
        "Add-ClusterVirtualMachineRole -Cluster CLU-LOCAL -VMName app-local -WhatIf"
        not in script
    )


# --- Dry run and apply --------------------------------------------------------------


def test_a_dry_run_shows_what_would_change_and_writes_nothing(team):
    before = counts()
    result = run_import(fixture("ps51-numbers-utf16.json"), team=team, dry_run=True)
    assert counts() == before
    body = result.as_dict()
    assert body["summary"]["vm"] == {
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "missing": 0,
    }
    assert body["summary"]["host"]["created"] == 3
    web = next(i for i in body["items"] if i["name"] == "east-web-1")
    assert web["path"] == "nodes[0].vms[0]"
    assert web["fields"]["memory_mib"] == {"old": None, "new": 2048}
    assert (
        body["file"]["sha256"]
        == hashlib.sha256(fixture("ps51-numbers-utf16.json")).hexdigest()
    )


def test_apply_creates_the_cluster_with_its_provenance_and_audits_it(team):
    admin = make_member(team, "administrator", "ann")
    data = fixture("ps51-numbers-utf16.json")
    result = run_import(
        data, team=team, user=admin, dry_run=False, file_name="east.json"
    )
    cluster = result.cluster
    assert (cluster.team, cluster.imported_by, cluster.imported_from) == (
        team,
        admin,
        "east.json",
    )
    assert cluster.imported_sha256 == hashlib.sha256(data).hexdigest()
    assert cluster.exported_on == "HV-E1" and cluster.exported_at.year == 2023
    assert cluster.storage_kind == "iscsi" and cluster.shared_storage
    vm = VirtualMachine.objects.get(name="east-db-1")
    assert (vm.host.name, vm.memory_mib, vm.vcpus) == ("HV-E2", 8192, 4)
    assert str(vm.vm_id) == "0c7f3a5e-1d2b-4c3a-9e8f-101010101003"
    assert vm.workload_profile == "web" and vm.workload_assumed
    assert {d.csv.name for d in vm.disks.all()} == {"Cluster Disk 2"}
    entries = LogEntry.objects.filter(actor=admin)
    assert entries.count() == 1 + 3 + 2 + 5
    assert {e.additional_data["import"]["sha256"] for e in entries} == {
        cluster.imported_sha256
    }
    assert entries.get(object_repr="east-db-1").changes["memory_mib"] == [None, 8192]


def test_reimporting_the_same_file_changes_nothing(team):
    imported("ps7-enums-as-strings.json", team)
    before = counts()
    stamp = Cluster.objects.get(name="CLU-WEST").imported_at
    result = run_import(fixture("ps7-enums-as-strings.json"), team=team, dry_run=False)
    assert not result.applied and not result.plan.changes_anything
    assert result.as_dict()["summary"]["vm"]["unchanged"] == 3
    assert counts() == before
    assert Cluster.objects.get(name="CLU-WEST").imported_at == stamp


def test_a_changed_file_updates_fields_showing_old_and_new(team):
    imported("ps7-enums-as-strings.json", team)
    d = json.loads(fixture("ps7-enums-as-strings.json"))
    web = d["nodes"][0]["vms"].pop(0)
    web["MemoryStartup"] = web["MemoryAssigned"] = 4096 * 2**20
    web["AutomaticStartAction"] = "Start"
    d["nodes"][1]["vms"].append(web)  # moved to HV-W2 outside hvweb
    data = psjson.encode(psjson.dumps(d))
    plan = run_import(data, team=team, dry_run=True).plan
    (item,) = plan.by("vm", "updated")
    assert item.fields["memory_mib"] == (2048, 4096)
    assert item.fields["host"] == ("HV-W1", "HV-W2")
    assert item.fields["automatic_start_action"] == ("nothing", "always_start")
    run_import(data, team=team, dry_run=False)
    vm = VirtualMachine.objects.get(name="west-web-1")
    assert (vm.memory_mib, vm.host.name, vm.automatic_start_action) == (
        4096,
        "HV-W2",
        "always_start",
    )
    assert vm.workload_assumed  # the workload is still the assumption


def test_vms_gone_from_the_cluster_are_listed_and_removed_only_when_chosen(team):
    imported("ps7-enums-as-strings.json", team)
    d = json.loads(fixture("ps7-enums-as-strings.json"))
    d["nodes"][0]["vms"].pop()  # west-web-2 is gone
    data = psjson.encode(psjson.dumps(d))
    kept = run_import(data, team=team, dry_run=False)
    (missing,) = kept.plan.by("vm", "missing")
    assert (missing.name, missing.action) == ("west-web-2", "keep")
    assert VirtualMachine.objects.filter(name="west-web-2").exists()
    removed = run_import(
        data, team=team, dry_run=False, options=ImportOptions(remove_missing=True)
    )
    assert removed.plan.by("vm", "missing")[0].action == "remove"
    assert not VirtualMachine.objects.filter(name="west-web-2").exists()
    assert not NetworkAdapter.objects.filter(mac_address="00-15-5D-0B-01-02").exists()


# --- Identity: teams, names, MACs -----------------------------------------------------


def test_two_teams_each_import_a_cluster_with_a_host_hv01(team):
    other = Team.objects.create(name="Others")
    for t, cluster_id in ((team, "aaaaaaaa-0000-4000-8000-000000000001"),
                          (other, "aaaaaaaa-0000-4000-8000-000000000002")):  # fmt: skip
        d = json.loads(fixture("local-storage.json"))
        d["Cluster"]["Id"] = cluster_id
        d["nodes"][0]["Name"] = "HV01"
        d["csvs"][0]["OwnerNode"] = "HV01"
        run_import(psjson.encode(psjson.dumps(d)), team=t, dry_run=False)
    assert Host.objects.filter(name="HV01").count() == 2
    assert Cluster.objects.filter(name="CLU-LOCAL").count() == 2


def test_a_file_for_another_teams_cluster_is_refused_and_writes_nothing(team):
    imported("amd-node.json", team)
    other = Team.objects.create(name="Others")
    before = counts()
    with pytest.raises(ImportRefused) as caught:
        run_import(fixture("amd-node.json"), team=other, dry_run=False)
    ((problem),) = caught.value.problems
    assert (problem.path, problem.rule) == ("Cluster.Id", "conflict")
    assert "another team" in problem.message and "Imports" not in problem.message
    assert counts() == before


def test_a_bad_file_changes_nothing(team):
    imported("ps7-enums-as-strings.json", team)
    before = counts()
    d = json.loads(fixture("ps7-enums-as-strings.json"))
    d["nodes"][0]["vms"][0]["MemoryStartup"] = 999 * 2**20  # a real change...
    d["nodes"][2]["vms"] = [{"Name": "broken", "VMId": "not-a-guid"}]  # ...and a bad VM
    with pytest.raises(ImportRefused) as caught:
        run_import(psjson.encode(psjson.dumps(d)), team=team, dry_run=False)
    assert "nodes[2].vms[0].VMId" in {p.path for p in caught.value.problems}
    assert counts() == before
    assert VirtualMachine.objects.get(name="west-web-1").memory_mib == 2048


def test_a_mac_is_unique_within_a_cluster_not_across_clusters():
    blue, red = make_world("BLUE"), make_world("RED")
    mac = blue.vm.adapters.get().mac_address
    other_cluster = NetworkAdapter(vm=red.vm, mac_address=mac, virtual_switch="x")
    other_cluster.full_clean()  # another cluster: allowed
    from hvweb.inventory.testing import make_vm

    same_cluster = NetworkAdapter(
        vm=make_vm(blue.hosts[1], "blue-2", csv=blue.csv), mac_address=mac,
        virtual_switch="x",
    )  # fmt: skip
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="unique within a cluster"):
        same_cluster.full_clean()


def test_a_user_who_does_not_administer_the_team_cannot_import(team):
    from django.core.exceptions import PermissionDenied

    operator = make_member(team, "operator", "otto")
    with pytest.raises(PermissionDenied, match="administrator role"):
        run_import(fixture("amd-node.json"), team=team, user=operator, dry_run=True)


# --- The round trip -------------------------------------------------------------------


def matrix(cluster: Cluster):
    vms = VirtualMachine.objects.filter(host__cluster=cluster).select_related(
        "host__cluster"
    )
    return sorted(
        (r.vm.name, r.source.name, r.destination.name,
         tuple((f.code, f.message) for f in r.failures))
        for r in snapshots.readiness(vms)
    )  # fmt: skip


@pytest.mark.parametrize("style", ["ps7", "ps51"])
def test_the_demo_exported_and_imported_into_another_team_has_the_same_matrix(
    tmp_path, style
):
    demo.seed(write=lambda *_: None)
    target = Team.objects.create(name="Round trip")
    for name in ("CLU-PROD", "CLU-LAB"):
        path = tmp_path / f"{name}.json"
        call_command(
            "export_hyperv", f"Operations/{name}", "-o", str(path), "--style", style
        )
        call_command("import_hyperv", str(path), "--team", "Round trip")
        original = Cluster.objects.get(team__name="Operations", name=name)
        copy = Cluster.objects.get(team=target, name=name)
        assert matrix(original) == matrix(copy) and len(matrix(copy)) > 0
    assert (tmp_path / "CLU-LAB.json").read_bytes()[:2] == (
        b"\xff\xfe" if style == "ps51" else b"{\r"
    )


def test_a_cluster_renamed_onto_another_of_the_team_is_refused(team):
    imported("amd-node.json", team)
    imported("local-storage.json", team)
    d = json.loads(fixture("amd-node.json"))
    d["Cluster"]["Name"] = "CLU-LOCAL"  # same Id as CLU-MIXED, another's name
    with pytest.raises(ImportRefused) as caught:
        run_import(psjson.encode(psjson.dumps(d)), team=team, dry_run=False)
    assert caught.value.problems[0].path == "Cluster.Name"
    assert Cluster.objects.filter(name="CLU-MIXED").exists()
