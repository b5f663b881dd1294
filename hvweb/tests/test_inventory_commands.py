"""``seed_demo`` and ``readiness`` on the demo inventory."""

import json
import stat
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from hvweb.inventory import demo
from hvweb.inventory.models import Cluster, Host, Membership, VirtualMachine
from migrator import rules

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def seeded(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return run("seed_demo")


def readiness_json(*args) -> list[dict]:
    return json.loads(run("readiness", "--json", *args))


# --- seed_demo -----------------------------------------------------------------------


def test_seed_demo_creates_the_team_users_and_both_clusters(seeded, tmp_path):
    assert "Created demo cluster CLU-PROD." in seeded
    assert "Created demo cluster CLU-LAB." in seeded
    logins = json.loads((tmp_path / "demo-logins.json").read_text())
    assert set(logins) == {"demo-viewer", "demo-operator", "demo-admin"}
    for name, password in logins.items():
        assert f"{name:<14} {password}" in seeded
        assert authenticate(username=name, password=password) is not None
    roles = dict(
        Membership.objects.filter(team__name="Operations").values_list(
            "user__username", "role"
        )
    )
    assert roles == {
        "demo-viewer": "viewer",
        "demo-operator": "operator",
        "demo-admin": "administrator",
    }
    mode = stat.S_IMODE((tmp_path / "demo-logins.json").stat().st_mode)
    assert mode == 0o600


def test_seed_demo_is_idempotent_and_prints_the_same_logins(seeded, tmp_path):
    counts = (
        Cluster.objects.count(),
        Host.objects.count(),
        VirtualMachine.objects.count(),
    )
    again = run("seed_demo")
    assert "Demo inventory already present" in again
    assert "Created" not in again
    assert (
        Cluster.objects.count(),
        Host.objects.count(),
        VirtualMachine.objects.count(),
    ) == counts
    logins = json.loads((tmp_path / "demo-logins.json").read_text())
    for name, password in logins.items():
        assert f"{name:<14} {password}" in again


def test_prod_has_eight_ready_ha_vms_on_three_intel_hosts(seeded):
    prod = Cluster.objects.get(name="CLU-PROD")
    hosts = list(prod.hosts.all())
    assert len(hosts) == 3
    assert {(h.cpu_vendor, h.boot_drive) for h in hosts} == {("intel", "C")}
    assert prod.csvs.count() == 2
    vms = VirtualMachine.objects.filter(host__cluster=prod)
    assert vms.count() == 8
    assert all(vm.highly_available and vm.power_state == "running" for vm in vms)
    assert all(512 <= vm.memory_mib <= 2048 for vm in vms)
    assert len({vm.workload_profile for vm in vms}) >= 3


# --- readiness -----------------------------------------------------------------------


def test_readiness_json_shows_exactly_each_offenders_rule_for_every_demo_pair(seeded):
    pairs = readiness_json()
    offender_code = {name: code for code, name in demo.LAB_OFFENDERS.items()}
    lab = [p for p in pairs if p["cluster"] == "CLU-LAB"]
    prod = [p for p in pairs if p["cluster"] == "CLU-PROD"]
    assert len(prod) == 8 * 2 and all(p["ok"] and not p["failures"] for p in prod)
    assert len(lab) == 4 * 6
    for pair in lab:
        expected = {
            offender_code[name]
            for name in (pair["vm"], pair["source"], pair["destination"])
            if name in offender_code
        }
        codes = {f["code"] for f in pair["failures"]}
        assert codes == expected, pair
        assert pair["ok"] == (not expected)
        assert all(f["message"] for f in pair["failures"])
    # Each of the seven rules is broken somewhere, and the healthy pairs pass.
    assert {f["code"] for p in lab for f in p["failures"]} == {
        r.code for r in rules.RULES
    }
    assert {"vm": "lab-web-1", "destination": "HV-LAB-2", "ok": True}.items() <= next(
        p for p in lab if p["vm"] == "lab-web-1" and p["destination"] == "HV-LAB-2"
    ).items()


def test_readiness_json_has_the_documented_keys(seeded):
    (first, *_) = readiness_json("--vm", "lab-always-start")
    assert set(first) == {"cluster", "vm", "source", "destination", "ok", "failures"}
    assert set(first["failures"][0]) == {"code", "message"}


def test_readiness_filters_by_vm_and_by_host(seeded):
    only_vm = readiness_json("--vm", "lab-web-1")
    assert {p["vm"] for p in only_vm} == {"lab-web-1"} and len(only_vm) == 6
    amd = readiness_json("--host", "HV-LAB-AMD")
    assert len(amd) == 4
    assert all(p["destination"] == "HV-LAB-AMD" for p in amd)
    assert all("CPU_VENDOR" in {f["code"] for f in p["failures"]} for p in amd)
    source = readiness_json("--host", "HV-PROD-3")
    assert {p["vm"] for p in source if p["source"] == "HV-PROD-3"} == {
        "prod-db-2",
        "prod-app-1",
    }


def test_readiness_text_names_the_rule_and_the_fix(seeded):
    out = run("readiness", "--vm", "lab-local-disk")
    assert "lab-local-disk: HV-LAB-1 -> HV-LAB-2  REFUSED HIGHLY_AVAILABLE" in out
    assert "move it to a Cluster Shared Volume of CLU-LAB" in out
    assert out.rstrip().endswith("0 of 6 pairs may live-migrate.")


def test_readiness_refuses_unknown_names(seeded):
    with pytest.raises(CommandError, match="no virtual machine named 'nope'"):
        run("readiness", "--vm", "nope")
    with pytest.raises(CommandError, match="no host named 'nope'"):
        run("readiness", "--host", "nope")


def test_readiness_as_a_user_sees_only_their_teams(seeded):
    from hvweb.inventory.testing import make_member, make_world

    other = make_world("RED")
    make_member(other.team, "viewer", "red-viewer")
    pairs = readiness_json("--user", "red-viewer")
    assert {p["cluster"] for p in pairs} == {"CLU-RED"}
    assert {p["cluster"] for p in readiness_json("--user", "demo-viewer")} == {
        "CLU-PROD",
        "CLU-LAB",
    }
