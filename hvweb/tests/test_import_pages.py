"""The import page, POST /api/imports/, the readiness report, the CLI lookups."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from hvweb.api.testing import token_client
from hvweb.inventory.importers.apply import run_import
from hvweb.inventory.models import Cluster, Host, Team, VirtualMachine
from hvweb.inventory.testing import make_member, make_world

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "hyperv"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def team():
    return Team.objects.create(name="Imports")


@pytest.fixture
def admin(team, client):
    user = make_member(team, "administrator", "ann")
    client.force_login(user)
    return user


# --- The page ----------------------------------------------------------------------


def test_the_import_page_is_for_team_administrators(client, team):
    client.force_login(make_member(team, "operator", "otto"))
    assert client.get("/imports/").status_code == 403


def test_upload_dry_run_then_apply_the_same_file(client, admin, team, redis_url):
    upload = SimpleUploadedFile("east.json", fixture("ps51-numbers-utf16.json"))
    response = client.post(
        "/imports/",
        {"file": upload, "team": team.pk, "workload_profile": "database"},
    )
    body = text(response)
    assert response.status_code == 200 and "Dry run: CLU-EAST into team Imports" in body
    assert not Cluster.objects.filter(name="CLU-EAST").exists()  # nothing written
    assert 'data-kind="vm" data-status="created"' in body or "east-web-1" in body
    token = response.context["token"]
    fingerprint = response.context["body"]["fingerprint"]
    applied = client.post(
        "/imports/apply/",
        {"token": token, "fingerprint": fingerprint, "workload_profile": "database"},
        follow=True,
    )
    cluster = Cluster.objects.get(name="CLU-EAST")
    assert applied.redirect_chain[-1][0] == cluster.get_absolute_url()
    assert "Imported CLU-EAST from east.json" in text(applied)
    assert "Imported from <strong>east.json</strong>" in text(applied)  # provenance
    assert VirtualMachine.objects.get(name="east-web-1").workload_profile == "database"
    # The token was used up: applying twice does not import twice.
    again = client.post("/imports/apply/", {"token": token}, follow=True)
    assert "no longer available" in text(again)


def test_a_refused_upload_lists_each_problem_with_its_path(client, admin, team):
    upload = SimpleUploadedFile("shallow.json", fixture("depth-truncated.json"))
    response = client.post("/imports/", {"file": upload, "team": team.pk,
                                         "workload_profile": "web"})  # fmt: skip
    body = text(response)
    assert response.status_code == 400
    assert "nodes[0].vms[0].HardDrives[0]" in body and "-Depth" in body
    assert not Cluster.objects.filter(name="CLU-SHALLOW").exists()


def test_applying_after_the_inventory_changed_is_refused(
    client, admin, team, redis_url
):
    upload = SimpleUploadedFile("west.json", fixture("ps7-enums-as-strings.json"))
    response = client.post("/imports/", {"file": upload, "team": team.pk,
                                         "workload_profile": "web"})  # fmt: skip
    run_import(fixture("ps7-enums-as-strings.json"), team=team, dry_run=False)
    applied = client.post(
        "/imports/apply/",
        {"token": response.context["token"],
         "fingerprint": response.context["body"]["fingerprint"],
         "workload_profile": "web"},
    )  # fmt: skip
    assert applied.status_code == 409 and "changed since the dry run" in text(applied)


# --- The API -----------------------------------------------------------------------


def api_url(team, **params):
    query = "&".join(f"{k}={v}" for k, v in {"team": team.pk, **params}.items())
    return f"/api/imports/?{query}"


def test_the_api_dry_run_then_apply(team):
    api = token_client(make_member(team, "administrator", "ann"))
    data = fixture("amd-node.json")
    dry = api.post(api_url(team, dry_run="true"), data, content_type="application/json")
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    assert dry.json()["summary"]["host"]["created"] == 3
    assert not Cluster.objects.filter(name="CLU-MIXED").exists()
    done = api.post(api_url(team), data, content_type="application/octet-stream")
    assert done.status_code == 201 and done.json()["applied"] is True
    cluster = Cluster.objects.get(pk=done.json()["cluster_id"])
    assert cluster.hosts.count() == 3
    again = api.post(api_url(team), data, content_type="application/octet-stream")
    assert again.status_code == 200 and again.json()["applied"] is False


def test_the_api_takes_a_multipart_file_too(team):
    api = token_client(make_member(team, "administrator", "ann"))
    upload = SimpleUploadedFile("solo.json", fixture("one-vm-cluster.json"))
    response = api.post(api_url(team), {"file": upload}, format="multipart")
    assert response.status_code == 201
    assert response.json()["file"]["name"] == "solo.json"


def test_the_api_refuses_bad_files_with_paths_and_rules(team):
    api = token_client(make_member(team, "administrator", "ann"))
    response = api.post(api_url(team), fixture("depth-truncated.json"),
                        content_type="application/octet-stream")  # fmt: skip
    body = response.json()
    assert response.status_code == 400 and "nothing was changed" in body["detail"]
    assert {"path": "nodes[0].vms[0].HardDrives[0]", "rule": "depth"}.items() <= (
        body["problems"][0].items()
    )
    truncated = api.post(api_url(team), fixture("amd-node.json")[:500],
                         content_type="application/json")  # fmt: skip
    assert (
        truncated.status_code == 400
        and truncated.json()["problems"][0]["rule"] == "json"
    )


def test_the_api_refuses_fifty_megabytes_by_size(team):
    api = token_client(make_member(team, "administrator", "ann"))
    junk = b"x" * (50 * 1024 * 1024)
    response = api.post(api_url(team), junk, content_type="application/octet-stream")
    assert response.status_code == 413
    assert response.json()["problems"][0]["rule"] == "size"
    assert not Cluster.objects.exists()


def test_the_api_refuses_another_teams_cluster_with_409(team):
    run_import(fixture("local-storage.json"), team=team, dry_run=False)
    other = Team.objects.create(name="Others")
    api = token_client(make_member(other, "administrator", "oz"))
    response = api.post(api_url(other), fixture("local-storage.json"),
                        content_type="application/octet-stream")  # fmt: skip
    assert response.status_code == 409
    assert response.json()["problems"][0]["rule"] == "conflict"


def test_the_api_needs_the_administrator_role_and_hides_other_teams(team):
    viewer = token_client(make_member(team, "viewer", "vic"))
    response = viewer.post(api_url(team), b"{}", content_type="application/json")
    assert response.status_code == 403
    stranger = token_client(
        make_member(Team.objects.create(name="Far"), "administrator", "x")
    )
    assert (
        stranger.post(api_url(team), b"{}", content_type="application/json").status_code
        == 404
    )
    bad = token_client(make_member(team, "administrator", "ann"))
    response = bad.post(api_url(team, workload_profile="gaming"), b"{}",
                        content_type="application/json")  # fmt: skip
    assert response.status_code == 400 and "workload_profile" in response.json()


# --- The readiness report and the pages' PowerShell ----------------------------------


def test_the_readiness_report_in_four_forms(client, team):
    cluster = run_import(
        fixture("local-storage.json"), team=team, dry_run=False
    ).cluster
    client.force_login(make_member(team, "viewer", "vic"))
    page = text(client.get(f"/clusters/{cluster.pk}/readiness/"))
    assert "Readiness report: CLU-LOCAL" in page
    assert "Add-ClusterVirtualMachineRole -Cluster CLU-LOCAL -VMName app-local" in page
    rows = client.get(f"/clusters/{cluster.pk}/readiness.csv").content.decode()
    assert "app-local" in rows and "HIGHLY_AVAILABLE" in rows
    body = client.get(f"/clusters/{cluster.pk}/readiness.json").json()
    app = next(vm for vm in body["vms"] if vm["name"] == "app-local")
    assert app["failures"][0]["code"] == "HIGHLY_AVAILABLE"
    assert body["cluster"]["imported_sha256"] == cluster.imported_sha256
    script = client.get(f"/clusters/{cluster.pk}/readiness.ps1")
    assert script.content.startswith(b"\xef\xbb\xbf")
    assert "-WhatIf" in script.content.decode("utf-8-sig")
    other = make_world("RED")
    assert client.get(f"/clusters/{other.cluster.pk}/readiness/").status_code == 404


def test_a_vm_page_shows_the_fix_and_the_move_in_powershell(client, team):
    run_import(fixture("ps51-numbers-utf16.json"), team=team, dry_run=False)
    client.force_login(make_member(team, "operator", "otto"))
    vm = VirtualMachine.objects.get(name="east-app-1")
    body = text(client.get(vm.get_absolute_url()))
    assert (
        "Set-VM -ComputerName HV-E1 -Name east-app-1 -AutomaticStartAction Nothing"
        in body
    )
    ready = VirtualMachine.objects.get(name="east-web-1")
    body = text(client.get(ready.get_absolute_url()))
    assert ("Move-ClusterVirtualMachineRole -Cluster CLU-EAST -Name east-web-1 "
            "-Node HV-E2 -MigrationType Live") in body  # fmt: skip
    assert "this forecast assumes a web server profile" in body


def test_a_host_page_offers_its_drain_in_powershell(client, team):
    run_import(fixture("ps51-numbers-utf16.json"), team=team, dry_run=False)
    client.force_login(make_member(team, "viewer", "vic"))
    host = Host.objects.get(name="HV-E1")
    body = text(client.get(host.get_absolute_url()))
    assert "Suspend-ClusterNode -Cluster CLU-EAST -Name HV-E1 -Drain" in body
    assert "-Name east-web-1 -Node " in body


def test_an_operator_sets_the_assumed_workload(client, team):
    run_import(fixture("one-vm-cluster.json"), team=team, dry_run=False)
    vm = VirtualMachine.objects.get(name="solo-1")
    client.force_login(make_member(team, "viewer", "vic"))
    assert (
        client.post(f"/vms/{vm.pk}/workload/", {"workload_profile": "idle"}).status_code
        == 403
    )
    client.force_login(make_member(team, "operator", "otto"))
    client.post(f"/vms/{vm.pk}/workload/", {"workload_profile": "database"})
    vm.refresh_from_db()
    assert (vm.workload_profile, vm.workload_assumed) == ("database", False)
    assert "forecast assumes" not in text(client.get(vm.get_absolute_url()))


# --- The command line ----------------------------------------------------------------


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_hyperv_dry_run_json_and_apply(team, tmp_path):
    path = tmp_path / "west.json"
    path.write_bytes(fixture("ps7-enums-as-strings.json"))
    out, _ = run("import_hyperv", str(path), "--team", "Imports", "--dry-run", "--json")
    body = json.loads(out)
    assert body["dry_run"] and body["summary"]["vm"]["created"] == 3
    out, _ = run("import_hyperv", str(path), "--team", "Imports")
    assert out.startswith("Imported into team Imports.")
    assert "+ west-sql-1 (nodes[1].vms[0])" in out
    out, _ = run("import_hyperv", str(path), "--team", "Imports")
    assert out.startswith("Nothing to change")


def test_import_hyperv_refuses_a_bad_file_with_exit_1(team, tmp_path):
    path = tmp_path / "shallow.json"
    path.write_bytes(fixture("depth-truncated.json"))
    with pytest.raises(SystemExit) as exit_:
        run("import_hyperv", str(path), "--team", "Imports")
    assert exit_.value.code == 1


def test_a_name_that_matches_several_hosts_is_refused_naming_them(team):
    for t, cluster_id in ((team, "aaaaaaaa-0000-4000-8000-000000000001"),
                          (Team.objects.create(name="Others"),
                           "aaaaaaaa-0000-4000-8000-000000000002")):  # fmt: skip
        d = json.loads(fixture("amd-node.json"))
        d["Cluster"]["Id"] = cluster_id
        d["Cluster"]["Name"] = f"CLU-{t.name.upper()}"
        from hvweb.inventory.importers import psjson

        run_import(psjson.encode(psjson.dumps(d)), team=t, dry_run=False)
    with pytest.raises(CommandError) as caught:
        run("drain_host", "HV-A1")
    message = str(caught.value)
    assert "'HV-A1' names 2 hosts" in message
    assert "CLU-IMPORTS/HV-A1" in message and "CLU-OTHERS/HV-A1" in message
    assert "CLUSTER/NAME" in message
    out, _ = run("readiness", "--vm", "CLU-OTHERS/mixed-web-1", "--json")
    pairs = json.loads(out)
    assert {p["cluster"] for p in pairs} == {"CLU-OTHERS"} and len(pairs) == 2
    vm = VirtualMachine.objects.get(
        name="mixed-web-1", host__cluster__name="CLU-IMPORTS"
    )
    out, _ = run("readiness", "--vm", f"id:{vm.pk}")
    assert out.startswith("CLU-IMPORTS  mixed-web-1")
