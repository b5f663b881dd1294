"""The model against the engine, on the demo's VMs (issue 11, item 2)."""

from __future__ import annotations

import importlib
import io
import json

from migrator.calibrate import DEMO_PROFILES, calibrate, demo_spec
from migrator.cli import main
from migrator.spec import MIB, POLICIES


def test_every_demo_profile_and_option_meets_the_targets() -> None:
    # Small: a 48 MiB memory budget samples the demo's VMs, three seeds a row.
    rows = calibrate(seeds=(1, 2, 3), budget=48 * MIB)
    assert len(rows) == 4 * 3
    for row in rows:
        assert row.ok, row.to_dict()
    hammer = {r.option: r for r in rows if r.profile == "memory hammer"}
    # Compression helps the hammer (deltas of 0.4 of a page), and no more.
    assert hammer["compression"].downtime_s < hammer["tcpip"].downtime_s / 4
    assert hammer["compression"].passes < hammer["tcpip"].passes == 5
    assert hammer["compression"].bytes_sent > 0.6 * hammer["tcpip"].bytes_sent


def test_every_policy_meets_the_targets_on_the_memory_hammer() -> None:
    # The one demo profile whose move the policies change (the others converge).
    hammer = [p for p in DEMO_PROFILES if p.kind == "sweep"]
    rows = calibrate(
        profiles=hammer,
        options=("tcpip", "compression"),
        policies=POLICIES,
        seeds=(1, 2, 3),
        budget=48 * MIB,
    )
    for row in rows:
        assert row.ok, row.to_dict()
    tcp = {r.policy: r for r in rows if r.option == "tcpip"}
    assert tcp["escalate"].aborted and tcp["escalate"].predicted.aborted
    assert tcp["throttle"].throttled and not tcp["hyperv"].throttled


def test_calibrate_prints_json_and_its_verdict() -> None:
    out = io.StringIO()
    status = main(
        ["calibrate", "--seeds", "1", "--memory-budget", "24MiB", "--json",
         "--policy", "hyperv", "--policy", "escalate"],
        out=out,
    )  # fmt: skip
    data = json.loads(out.getvalue())
    assert data["seeds"] == 1 and data["memory_budget_bytes"] == 24 * MIB
    rows = data["rows"]
    assert len(rows) == len(DEMO_PROFILES) * 3 * 2
    assert [r["profile"] for r in rows[::6]] == [p.name for p in DEMO_PROFILES]
    assert [r["policy"] for r in rows[:2]] == ["hyperv", "escalate"]
    assert status == (0 if all(r["ok"] for r in rows) else 1)
    assert set(rows[0]) >= {"passes", "bytes_sent", "total_time_s", "downtime_s", "ok"}


def test_the_profiles_are_the_demos_vms_as_the_console_builds_them() -> None:
    # The calibration mirrors hvweb's demo inventory and its spec mapping.
    # (Imported by name: migrator's strict typing stops at the shell.)
    settings = importlib.import_module("django.conf").settings
    demo = importlib.import_module("hvweb.inventory.demo")
    WORKLOAD_KIND = importlib.import_module("hvweb.moves.runner").WORKLOAD_KIND

    workloads = {WORKLOAD_KIND[p]: rate for p, rate in demo.WORKLOADS.items()}
    vms = {name: (memory, profile) for name, _, memory, _, profile, _ in demo.PROD_VMS}
    for profile in DEMO_PROFILES:
        memory, kind = vms[profile.vm]
        assert profile.memory_mib == memory
        assert WORKLOAD_KIND[kind] == profile.kind
        if profile.kind != "idle":
            assert workloads[profile.kind] == (
                profile.write_rate,
                profile.working_set_pages,
            )
    assert demo_spec(DEMO_PROFILES[0]).memory_budget_bytes == (
        int(settings.HVWEB_MIGRATION_MEMORY_MIB) << 20
    )
