"""Benchmark importing a large cluster: a 64-node, 2,000-VM export.

    python benchmarks/import_hyperv.py [--nodes 64] [--vms 2000] [--runs 3]
                                       [--database-url postgresql://...]

It writes the export as Windows PowerShell 5.1 does (its layout, UTF-16 LE
with a byte-order mark, enums as numbers: the largest and slowest form to
read), then, in a throwaway data folder (SQLite unless ``--database-url``):

1. **dry run** - parse and plan against an empty team (target: under 5 s);
2. **import** - the same, applied in one transaction with its audit entries
   (target: under 10 s);
3. **re-import** - the same file again: a dry run of an unchanged cluster,
   then an apply that finds nothing to change;
4. **readiness report** - every VM against every other host, with the fixes
   (for information; no target).

Each figure is the median of ``--runs`` runs (a fresh team per import run).
The machine's load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GIB = 1024**3
MIB = 1024**2


def export(nodes: int, vms: int, seed: str = "bench") -> dict:
    """A cluster of ``nodes`` Intel 2022 hosts and ``vms`` VMs on four CSVs."""
    names = [f"HV{n + 1:02d}" for n in range(nodes)]
    csvs = [
        {
            "Name": f"Cluster Disk {i}",
            "OwnerNode": names[i % nodes],
            "State": 2,
            "SharedVolumeInfo": [
                {
                    "FriendlyVolumeName": f"C:\\ClusterStorage\\Volume{i}",
                    "Partition": {"Size": 16 * 1024 * GIB, "FreeSpace": 4 * 1024 * GIB},
                }
            ],
        }
        for i in range(1, 5)
    ]
    per_node: list[list[dict]] = [[] for _ in names]
    for i in range(vms):
        name = f"vm-{i + 1:05d}"
        folder = f"C:\\ClusterStorage\\Volume{i % 4 + 1}\\{name}"
        per_node[i % nodes].append(
            {
                "Name": name,
                "VMId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{name}")),
                "State": 2 if i % 10 else 3,
                "MemoryStartup": (2048 + 1024 * (i % 4)) * MIB,
                "MemoryAssigned": (2048 + 1024 * (i % 4)) * MIB if i % 10 else 0,
                "ProcessorCount": 2 + i % 3,
                "Generation": 2,
                "AutomaticStartAction": 2 if i % 50 else 3,
                "IsClustered": bool(i % 100),
                "Priority": 2000,
                "HardDrives": [
                    {
                        "Path": f"{folder}\\{name}.vhdx",
                        "ControllerType": 1,
                        "Size": 80 * GIB,
                    },
                    {
                        "Path": f"{folder}\\data.vhdx",
                        "ControllerType": 1,
                        "Size": 200 * GIB,
                    },
                ],
                "NetworkAdapters": [
                    {
                        "Name": "Network Adapter",
                        "MacAddress": f"00155D{i >> 16 & 255:02X}{i >> 8 & 255:02X}"
                        f"{i & 255:02X}",
                        "SwitchName": "vSwitch-Prod",
                    }
                ],
            }
        )
    return {
        "Format": "hvweb-hyperv-inventory",
        "FormatVersion": 1,
        "ExportedAt": "/Date(1700000000000)/",
        "ComputerName": names[0],
        "Cluster": {"Name": "CLU-BENCH", "Id": None, "Domain": "corp.example"},
        "StorageKind": "FibreChannel",
        "csvs": csvs,
        "nodes": [
            {
                "Name": name,
                "State": 0,
                "DrainStatus": 0,
                "VMHost": {
                    "MemoryCapacity": 1024 * GIB,
                    "MaximumVirtualMachineMigrations": 4,
                    "VirtualMachineMigrationPerformanceOption": 2,
                    "VirtualMachineMigrationEnabled": True,
                    "VirtualMachineMigrationAuthenticationType": 1,
                },
                "OperatingSystem": {
                    "Caption": "Microsoft Windows Server 2022 Datacenter",
                    "Version": "10.0.20348",
                    "SystemDrive": "C:",
                    "TotalVisibleMemorySize": 1024 * 1024 * 1024,
                },
                "Processor": [
                    {
                        "Manufacturer": "GenuineIntel",
                        "Name": "Intel(R) Xeon(R) Gold 6430",
                    }
                ]
                * 2,
                "vms": vms_on_node,
            }
            for name, vms_on_node in zip(names, per_node, strict=True)
        ],
    }


def setup_django(data_dir: Path, database_url: str | None) -> None:
    os.environ["HVWEB_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "hvweb.settings"
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(fn) -> tuple[float, object]:
    began = time.perf_counter()
    value = fn()
    return time.perf_counter() - began, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--vms", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--database-url", help="a throwaway PostgreSQL database (default: SQLite)"
    )
    args = parser.parse_args()

    from hvweb.inventory.importers import psjson

    data = psjson.encode(psjson.dumps(export(args.nodes, args.vms), "ps51"), "utf-16")
    with tempfile.TemporaryDirectory(prefix="hvweb-bench-import-") as tmp:
        setup_django(Path(tmp), args.database_url)
        from hvweb.inventory.importers.apply import run_import
        from hvweb.inventory.models import Cluster, Team, VirtualMachine
        from hvweb.inventory.readiness_report import build_report

        dry, apply, redry, reapply, report = [], [], [], [], []
        for run in range(args.runs):
            team = Team.objects.create(name=f"Bench {run}")
            t, result = timed(lambda team=team: run_import(data, team=team))
            dry.append(t)
            assert result.plan.summary()["vm"]["created"] == args.vms
            t, result = timed(
                lambda team=team: run_import(data, team=team, dry_run=False)
            )
            apply.append(t)
            assert result.applied
            cluster = Cluster.objects.get(team=team)
            assert (
                VirtualMachine.objects.filter(host__cluster=cluster).count() == args.vms
            )
            t, result = timed(lambda team=team: run_import(data, team=team))
            redry.append(t)
            assert not result.plan.changes_anything
            t, result = timed(
                lambda team=team: run_import(data, team=team, dry_run=False)
            )
            reapply.append(t)
            assert not result.applied
            t, built = timed(lambda cluster=cluster: build_report(cluster))
            report.append(t)
            assert len(built.rows) == args.vms

        from django.db import connection

    load = os.getloadavg()
    print(
        f"hvweb import benchmark: {args.nodes} nodes, {args.vms} VMs "
        f"({args.vms * 2} disks, {args.vms} adapters), file {len(data) / MIB:.1f} MiB "
        f"(Windows PowerShell 5.1 layout, UTF-16 LE), {connection.vendor}, "
        f"median of {args.runs}"
    )
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} cores)")  # fmt: skip
    rows = [
        ("dry run (parse + plan)", dry, 5.0),
        ("import (parse + plan + apply, audited)", apply, 10.0),
        ("dry run of an unchanged cluster", redry, 5.0),
        ("re-import of the same file (no change)", reapply, 10.0),
        ("readiness report (every VM x every host)", report, None),
    ]
    ok = True
    for label, values, target in rows:
        median = statistics.median(values)
        verdict = ""
        if target is not None:
            met = median < target
            ok &= met
            verdict = f"  target < {target:.0f} s: {'met' if met else 'NOT MET'}"
        print(f"  {label:<44} {median:6.2f} s  (runs: "
              f"{', '.join(f'{v:.2f}' for v in values)}){verdict}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
