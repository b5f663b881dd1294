"""Write a stored cluster in the import format (``manage.py export_hyperv``).

The document is what ``scripts/export-hyperv.ps1`` would write for a real
cluster holding the same hosts, CSVs and VMs, so that exporting and importing
into another team gives the same readiness matrix (the round trip). Values
hvweb keeps that Windows reports differently are written the way Windows
reports them: the Hyper-V release as its OS build, the CPU vendor as the CPUID
vendor string, MACs as Get-VMNetworkAdapter writes them (00155D010203).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch

from ..models import Cluster, Host, VirtualMachine
from .document import FORMAT_NAME, FORMAT_VERSION, GIB, MIB

__all__ = ["OS_BUILDS", "export_cluster"]

#: A representative build of each release, for its Win32_OperatingSystem.Version
#: (see ``document.hyperv_version`` for the sources).
OS_BUILDS = {
    "2008": "6.0.6002",
    "2008 R2": "6.1.7601",
    "2012": "6.2.9200",
    "2012 R2": "6.3.9600",
    "2016": "10.0.14393",
    "2019": "10.0.17763",
    "2022": "10.0.20348",
    "2025": "10.0.26100",
}
_VENDORS = {"intel": "GenuineIntel", "amd": "AuthenticAMD"}
_STATES = {"up": "Up", "paused": "Paused", "down": "Down"}
_VM_STATES = {"running": "Running", "off": "Off", "saved": "Saved", "paused": "Paused"}
_START = {"nothing": "Nothing", "start_if_running": "StartIfRunning",
          "always_start": "Start"}  # fmt: skip
_CSV_STATES = {"online": "Online", "redirected": "Online", "offline": "Offline"}
_STORAGE = {"fibre_channel": "FibreChannel", "iscsi": "iSCSI", "none": "None"}
_PERFORMANCE = {"tcpip": "TCPIP", "compression": "Compression", "smb": "SMB"}


def export_cluster(cluster: Cluster, *, now: datetime, computer: str = "hvweb") -> dict:
    """``cluster`` as an export document (enums by name, as PowerShell 7 writes)."""
    hosts = list(
        Host.objects.filter(cluster=cluster)
        .order_by("name")
        .prefetch_related(
            Prefetch(
                "virtual_machines",
                VirtualMachine.objects.order_by("name").prefetch_related(
                    "disks__csv", "adapters"
                ),
            )
        )
    )
    csvs = list(cluster.csvs.select_related("owner").order_by("name"))
    return {
        "Format": FORMAT_NAME,
        "FormatVersion": FORMAT_VERSION,
        "ExportedAt": now.isoformat(),
        "ComputerName": computer,
        "Cluster": {
            "Name": cluster.name,
            "Id": str(cluster.hyperv_id) if cluster.hyperv_id else None,
            "MaximumParallelMigrations": cluster.max_simultaneous_migrations,
        },
        "StorageKind": _STORAGE[cluster.storage_kind],
        "csvs": [
            {
                "Name": c.name,
                "OwnerNode": c.owner.name if c.owner else None,
                "State": _CSV_STATES[c.state],
                "SharedVolumeInfo": [
                    {
                        "FriendlyVolumeName": c.path,
                        "Partition": {"Size": c.capacity_gib * GIB, "FreeSpace": None},
                    }
                ],
            }
            for c in csvs
        ],
        "nodes": [_node(h, cluster, csvs) for h in hosts],
    }


def _node(host: Host, cluster: Cluster, csvs) -> dict[str, Any]:
    reach = "Direct" if host.shared_storage_connected else "Unavailable"
    return {
        "Name": host.name,
        "State": _STATES[host.state],
        "DrainStatus": "Completed" if host.state == "paused" else "NotInitiated",
        "IsClusterNode": host.cluster_node,
        "VMHost": {
            "MemoryCapacity": host.memory_mib * MIB,
            "MaximumVirtualMachineMigrations": cluster.max_simultaneous_migrations,
            "VirtualMachineMigrationPerformanceOption": _PERFORMANCE[
                cluster.performance_option
            ],
            "VirtualMachineMigrationEnabled": True,
            "VirtualMachineMigrationAuthenticationType": "Kerberos",
        },
        "OperatingSystem": {
            "Caption": f"Microsoft Windows Server {host.hyperv_version}",
            "Version": OS_BUILDS[host.hyperv_version],
            "SystemDrive": f"{host.boot_drive}:",
            "TotalVisibleMemorySize": host.memory_mib * 1024,
        },
        "Processor": [
            {"Manufacturer": _VENDORS[host.cpu_vendor], "Name": host.cpu_model}
        ],
        "CsvStates": [
            {
                "Name": c.name,
                "StateInfo": reach,
                "BlockRedirectedIOReason": "NotBlockRedirected",
            }
            for c in csvs
        ],  # fmt: skip
        "vms": [_vm(vm, host) for vm in host.virtual_machines.all()],
    }


def _vm(vm: VirtualMachine, host: Host) -> dict[str, Any]:
    holds = vm.power_state in ("running", "paused")
    return {
        "Name": vm.name,
        "VMId": str(vm.vm_id),
        "State": _VM_STATES[vm.power_state],
        "MemoryStartup": vm.memory_mib * MIB,
        "MemoryAssigned": vm.memory_mib * MIB if holds else 0,
        "ProcessorCount": vm.vcpus,
        "Generation": 2,
        "AutomaticStartAction": _START[vm.automatic_start_action],
        "IsClustered": vm.highly_available,
        "Priority": 2000 if vm.highly_available else None,
        "HardDrives": [
            {
                "Path": d.path or _disk_path(d, host),
                "ControllerType": "SCSI",
                "Size": d.size_gib * GIB if d.size_gib else None,
            }
            for d in vm.disks.all()
        ],
        "NetworkAdapters": [
            {
                "Name": a.name,
                "MacAddress": a.mac_address.replace("-", ""),
                "SwitchName": a.virtual_switch,
            }
            for a in vm.adapters.all()
        ],  # fmt: skip
    }


def _disk_path(disk, host: Host) -> str:
    """A path for a disk stored without one: on its CSV, or the host's drive."""
    if disk.csv is not None:
        return f"{disk.csv.path}\\{disk.name}"
    return f"{host.boot_drive}:\\Hyper-V\\Virtual Hard Disks\\{disk.name}"
