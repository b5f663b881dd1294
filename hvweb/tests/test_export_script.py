"""scripts/export-hyperv.ps1 only reads, and writes what the importer reads.

PowerShell does not run here; these checks read the script's text.
"""

from __future__ import annotations

import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "export-hyperv.ps1"
TEXT = SCRIPT.read_text()
CODE = re.sub(r"<#.*?#>", "", TEXT, flags=re.S)
CODE = "\n".join(line.split("#")[0] if not line.lstrip().startswith("#") else ""
                 for line in CODE.splitlines())  # fmt: skip

#: Cmdlets the script may call: reads of the cluster and Hyper-V, and local
#: plumbing. Each is documented under learn.microsoft.com/powershell/module/.
ALLOWED = {
    "Get-Cluster", "Get-ClusterResource", "Get-ClusterParameter", "Get-ClusterGroup",
    "Get-ClusterSharedVolume", "Get-ClusterSharedVolumeState", "Get-ClusterNode",
    "Get-VMHost", "Get-VM", "Get-VMHardDiskDrive", "Get-VHD", "Get-VMNetworkAdapter",
    "Get-CimInstance", "Get-Location", "Get-Date", "Import-Module", "Where-Object",
    "ForEach-Object", "Measure-Object", "ConvertTo-Json", "Join-Path",
    "Write-Progress", "Write-Warning", "Write-Host", "New-Object", "Get-Name",
    "Get-OptionalProperty",
}  # fmt: skip


def test_the_script_calls_only_cmdlets_that_read():
    used = set(re.findall(r"\b([A-Z][a-z]+-[A-Z][A-Za-z]+)\b", CODE))
    assert used <= ALLOWED, sorted(used - ALLOWED)
    assert not {c for c in used if c.split("-")[0] in
                {"Set", "Move", "Remove", "Add", "Start", "Stop", "Suspend",
                 "Resume", "Enable", "Disable", "New-VM", "Out"}}  # fmt: skip


def test_the_script_writes_deep_enough_json_in_utf8_without_a_bom():
    assert "ConvertTo-Json -InputObject $document -Depth 8" in CODE
    assert "New-Object System.Text.UTF8Encoding $false" in CODE


def test_the_script_writes_every_field_the_importer_reads():
    for key in ("Format", "FormatVersion", "ExportedAt", "ComputerName", "Cluster",
                "StorageKind", "csvs", "nodes", "OwnerNode", "SharedVolumeInfo",
                "FriendlyVolumeName", "Partition", "FreeSpace", "VMHost",
                "MemoryCapacity", "MaximumVirtualMachineMigrations",
                "VirtualMachineMigrationPerformanceOption",
                "VirtualMachineMigrationEnabled",
                "VirtualMachineMigrationAuthenticationType", "OperatingSystem",
                "SystemDrive", "TotalVisibleMemorySize", "Processor", "Manufacturer",
                "CsvStates", "StateInfo", "BlockRedirectedIOReason", "vms", "VMId",
                "MemoryStartup", "MemoryAssigned", "ProcessorCount", "Generation",
                "AutomaticStartAction", "IsClustered", "Priority", "HardDrives",
                "ControllerType", "NetworkAdapters", "MacAddress", "SwitchName",
                "DrainStatus"):  # fmt: skip
        assert re.search(rf"\b{key}\s+=", CODE), key


def test_enums_are_written_by_name_on_every_version():
    for prop in ("State", "AutomaticStartAction", "ControllerType", "StateInfo"):
        assert re.search(rf"{prop}\s+= Get-Name ", CODE), prop
