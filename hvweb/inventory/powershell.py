"""The PowerShell that fixes a failing rule, moves a VM or drains a host.

Pure: it reads ``migrator.rules`` snapshots and failures and returns text;
nothing here touches the database. The readiness matrix, the VM and host
pages, the readiness report and its ``.ps1`` all come from here.

Every cmdlet and parameter written below is checked against Microsoft's
documentation (each :class:`Command` carries its page):

* ``Set-VM -ComputerName -Name -AutomaticStartAction Nothing`` (supports
  -WhatIf) - https://learn.microsoft.com/powershell/module/hyper-v/set-vm
* ``Move-VMStorage -ComputerName -VMName -DestinationStoragePath`` (-VMName is
  -Name's alias; supports -WhatIf) -
  https://learn.microsoft.com/powershell/module/hyper-v/move-vmstorage
* ``Add-ClusterVirtualMachineRole -Cluster -VMName`` (common parameters only,
  no -WhatIf) - https://learn.microsoft.com/powershell/module/failoverclusters/add-clustervirtualmachinerole
* ``Add-ClusterNode -Cluster -Name`` (no -WhatIf) -
  https://learn.microsoft.com/powershell/module/failoverclusters/add-clusternode
* ``Move-ClusterVirtualMachineRole -Cluster -Name -Node -MigrationType Live``
  (MigrationType: TurnOff, Quick, Shutdown, ShutdownForce, Live; no -WhatIf) -
  https://learn.microsoft.com/powershell/module/failoverclusters/move-clustervirtualmachinerole
* ``Suspend-ClusterNode -Cluster -Name -Drain`` (supports -WhatIf) -
  https://learn.microsoft.com/powershell/module/failoverclusters/suspend-clusternode
* ``Enable-VMMigration -ComputerName`` (supports -WhatIf) -
  https://learn.microsoft.com/powershell/module/hyper-v/enable-vmmigration
* named in advice only: ``Get-ClusterSharedVolumeState -Node`` and
  ``Test-Cluster`` (FailoverClusters module pages of the same site).

Where no command can make a rule hold (a processor's manufacturer, a 2008
host, a boot drive, a cable to the SAN) the fix says so and says what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from migrator.hyperv import FIRST_LIVE_MIGRATION_VERSION
from migrator.rules import ClusterSnapshot, Failure, HostSnapshot, VMSnapshot

__all__ = [
    "Command",
    "Fix",
    "drain_commands",
    "enable_migration_command",
    "fixes_for",
    "move_command",
    "quote",
    "script",
]

DOCS = {
    "Set-VM": "https://learn.microsoft.com/powershell/module/hyper-v/set-vm",
    "Move-VMStorage": "https://learn.microsoft.com/powershell/module/hyper-v/"
    "move-vmstorage",
    "Add-ClusterVirtualMachineRole": "https://learn.microsoft.com/powershell/module/"
    "failoverclusters/add-clustervirtualmachinerole",
    "Add-ClusterNode": "https://learn.microsoft.com/powershell/module/"
    "failoverclusters/add-clusternode",
    "Move-ClusterVirtualMachineRole": "https://learn.microsoft.com/powershell/module/"
    "failoverclusters/move-clustervirtualmachinerole",
    "Suspend-ClusterNode": "https://learn.microsoft.com/powershell/module/"
    "failoverclusters/suspend-clusternode",
    "Enable-VMMigration": "https://learn.microsoft.com/powershell/module/hyper-v/"
    "enable-vmmigration",
}
#: Cmdlets whose documented syntax has -WhatIf (the others take only the
#: common parameters, so a script must not pass it to them).
SUPPORTS_WHATIF = frozenset(
    {"Set-VM", "Move-VMStorage", "Suspend-ClusterNode", "Enable-VMMigration"}
)

_BARE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_BARE_PATH = re.compile(r"^[A-Za-z]:\\[A-Za-z0-9_.\\-]*$")


def quote(value: str) -> str:
    """``value`` as one PowerShell argument: bare when safe, else single-quoted.

    In a single-quoted string nothing is expanded and a quote is written twice
    (about_Quoting_Rules).
    """
    if _BARE.match(value) or _BARE_PATH.match(value):
        return value
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class Command:
    """One PowerShell command line, the cmdlet it runs and that cmdlet's page."""

    cmdlet: str
    text: str

    @property
    def doc(self) -> str:
        return DOCS[self.cmdlet]

    @property
    def supports_whatif(self) -> bool:
        return self.cmdlet in SUPPORTS_WHATIF

    def __str__(self) -> str:
        return self.text


def _command(cmdlet: str, *args: tuple[str, str | None]) -> Command:
    parts = [cmdlet]
    for name, value in args:
        parts.append(f"-{name}" if value is None else f"-{name} {quote(value)}")
    return Command(cmdlet, " ".join(parts))


@dataclass(frozen=True, slots=True)
class Fix:
    """What makes one rule hold for one subject (a VM or a host).

    ``commands`` run in order; empty when no command can fix it, and then
    ``note`` says so and what to do instead.
    """

    code: str
    subject: str
    commands: tuple[Command, ...]
    note: str

    @property
    def fixable(self) -> bool:
        return bool(self.commands)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "subject": self.subject,
            "commands": [
                {
                    "text": c.text,
                    "cmdlet": c.cmdlet,
                    "doc": c.doc,
                    "supports_whatif": c.supports_whatif,
                }
                for c in self.commands
            ],  # fmt: skip
            "note": self.note,
        }


# --- The rules' fixes --------------------------------------------------------------


def _csv_folder(volume: str, boot_drive: str, vm_name: str) -> str:
    """The folder for ``vm_name``'s files on a CSV, as its host sees it.

    CSVs are mounted under each node's %SystemDrive%\\ClusterStorage, so a host
    booting from D: reaches C:\\ClusterStorage\\Volume1 at D:\\ClusterStorage\\Volume1.
    """
    if len(volume) > 2 and volume[1] == ":" and boot_drive:
        volume = boot_drive + volume[1:]
    folder = re.sub(r'[\\/:*?"<>|]', "_", vm_name).strip(" .") or "vm"
    return f"{volume.rstrip(chr(92))}\\{folder}"


def _ha_fix(
    vm: VMSnapshot,
    host: HostSnapshot,
    cluster: ClusterSnapshot,
    csv_paths: Mapping[str, str],
) -> Fix:
    commands: list[Command] = []
    notes: list[str] = []
    off_csv = [d for d in vm.disks if d.csv is None or d.csv_cluster != cluster.name]
    if off_csv:
        if csv_paths:
            # The first volume by name: a real choice of volume is the
            # operator's (the readiness report lists them all).
            volume = csv_paths[sorted(csv_paths)[0]]
            target = _csv_folder(volume, host.boot_drive, vm.name)
            commands.append(
                _command(
                    "Move-VMStorage",
                    ("ComputerName", host.name),
                    ("VMName", vm.name),
                    ("DestinationStoragePath", target),
                )
            )
            notes.append(
                f"moves every file of {vm.name} to {target} on a Cluster Shared "
                f"Volume while it runs"
            )
        else:
            notes.append(
                f"{cluster.name} has no Cluster Shared Volume to move {vm.name}'s "
                f"disks to: add one first (a SAN LUN made a CSV)"
            )
    if not vm.highly_available:
        if off_csv and not csv_paths:
            pass
        else:
            commands.append(
                _command(
                    "Add-ClusterVirtualMachineRole",
                    ("Cluster", cluster.name),
                    ("VMName", vm.name),
                )
            )
            notes.append(f"makes {vm.name} a clustered role (highly available)")
    note = "; then ".join(notes) + "." if notes else ""
    return Fix(
        "HIGHLY_AVAILABLE", vm.name, tuple(commands), note[:1].upper() + note[1:]
    )


def _host_named(name: str, hosts: Sequence[HostSnapshot]) -> HostSnapshot | None:
    return next((h for h in hosts if h.name == name), None)


def fixes_for(
    failure: Failure,
    *,
    vm: VMSnapshot,
    source: HostSnapshot,
    destination: HostSnapshot,
    cluster: ClusterSnapshot,
    csv_paths: Mapping[str, str] | None = None,
) -> tuple[Fix, ...]:
    """How to make ``failure`` (of moving ``vm`` to ``destination``) hold.

    ``csv_paths`` maps the cluster's CSV names to their mount points, for
    moving storage onto one.
    """
    csv_paths = csv_paths or {}
    hosts = (source, destination)
    code = failure.code
    if code == "AUTO_START_ACTION":
        return (
            Fix(
                code,
                vm.name,
                (
                    _command(
                        "Set-VM",
                        ("ComputerName", source.name),
                        ("Name", vm.name),
                        ("AutomaticStartAction", "Nothing"),
                    ),
                ),
                f"The cluster, not the host, starts a highly available VM: "
                f"{vm.name}'s Automatic Start Action becomes Nothing.",
            ),
        )
    if code == "HIGHLY_AVAILABLE":
        return (_ha_fix(vm, source, cluster, csv_paths),)
    found: list[Fix] = []
    if code == "HYPERV_VERSION":
        for name in failure.subjects:
            host = _host_named(name, hosts)
            version = host.hyperv_version if host else "?"
            found.append(
                Fix(
                    code,
                    name,
                    (),
                    f"No command can fix this: {name} runs Hyper-V {version}, which "
                    f"cannot live-migrate. Upgrade its operating system to Windows "
                    f"Server {FIRST_LIVE_MIGRATION_VERSION} or later (or replace the "
                    f"host), then export the cluster again.",
                )
            )
    elif code == "CPU_VENDOR":
        names = {"intel": "Intel", "amd": "AMD"}
        for name in failure.subjects:
            host = _host_named(name, hosts)
            vendor = names.get(host.cpu_vendor, "?") if host else "?"
            other = names.get(source.cpu_vendor, "?")
            found.append(
                Fix(
                    code,
                    name,
                    (),
                    f"No command can fix this: {name} has an {vendor} processor, and "
                    f"a VM cannot live-migrate between Intel and AMD processors; no "
                    f"setting changes a host's processor. Keep the VMs that run on "
                    f"{other} processors on hosts with {other} processors.",
                )
            )
    elif code == "BOOT_DRIVE":
        for name in failure.subjects:
            host = _host_named(name, hosts)
            drive = host.boot_drive if host else "?"
            found.append(
                Fix(
                    code,
                    name,
                    (),
                    f"No command can fix this: {name} boots from {drive}: while the "
                    f"cluster's other hosts do not. Reinstall it to boot from the "
                    f"same drive letter as the others, or evict it from the cluster.",
                )
            )
    elif code == "SHARED_STORAGE":
        for name in failure.subjects:
            if name == cluster.name:
                note = (
                    f"No command can fix this: {cluster.name} has no SAN. Present "
                    f"Fibre Channel or iSCSI storage to every node and add it as a "
                    f"Cluster Shared Volume."
                )
            else:
                note = (
                    f"No command here can fix this: {name} has no path to "
                    f"{cluster.name}'s SAN. Restore its Fibre Channel zoning or "
                    f"iSCSI session, then check with Get-ClusterSharedVolumeState "
                    f"-Node {quote(name)}."
                )
            found.append(Fix(code, name, (), note))
    elif code == "FAILOVER_CLUSTER":
        for name in failure.subjects:
            host = _host_named(name, hosts)
            if (
                host is not None
                and host.cluster == cluster.name
                and not host.cluster_node
            ):
                found.append(
                    Fix(
                        code,
                        name,
                        (
                            _command(
                                "Add-ClusterNode",
                                ("Cluster", cluster.name),
                                ("Name", name),
                            ),
                        ),
                        f"Joins {name} to {cluster.name} as a failover cluster node "
                        f"(validate it with the other nodes first: Test-Cluster).",
                    )
                )
            elif name == cluster.name:
                found.append(
                    Fix(
                        code,
                        name,
                        (),
                        f"No command can fix this: {cluster.name} has shared storage "
                        f"disabled. Give the cluster shared storage (a SAN LUN added "
                        f"as a Cluster Shared Volume).",
                    )
                )
            else:
                found.append(
                    Fix(
                        code,
                        name,
                        (),
                        f"No command can fix this: {name} is in another cluster. "
                        f"Choose a host of {cluster.name}.",
                    )
                )
    return tuple(found)


# --- Moves ----------------------------------------------------------------------


def move_command(
    vm_name: str, node: str, cluster: str, migration_type: str = "Live"
) -> Command:
    """The move of a clustered VM to ``node``, as PowerShell runs it:
    ``migration_type`` Live, or Quick (save, move, resume) for a VM that is
    off or saved or below the cluster's move-type threshold."""
    return _command(
        "Move-ClusterVirtualMachineRole",
        ("Cluster", cluster),
        ("Name", vm_name),
        ("Node", node),
        ("MigrationType", migration_type),
    )


def drain_commands(host: str, cluster: str) -> Command:
    """Failover Clustering's own drain: pause the node, move its roles away."""
    return _command(
        "Suspend-ClusterNode", ("Cluster", cluster), ("Name", host), ("Drain", None)
    )


def enable_migration_command(host: str) -> Command:
    return _command("Enable-VMMigration", ("ComputerName", host))


# --- The .ps1 --------------------------------------------------------------------


def _comment(text: str, width: int = 86) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(f"# {line}")
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(f"# {line}")
    return lines


def script(
    title: str, fixes: Iterable[Fix], *, generated: datetime, source: str = ""
) -> str:
    """A ``.ps1`` that applies ``fixes`` in order, every one first as -WhatIf.

    Commands whose cmdlet supports -WhatIf carry it: running the script as it
    is changes nothing. Those that do not support it are commented out. Fixes
    that no command makes are listed as comments, so the change board sees
    them too.
    """
    out = [
        f"# {title}",
        f"# Generated by hvweb on {generated:%Y-%m-%d %H:%M} UTC.",
    ]
    if source:
        out += _comment(source)
    out += [
        "#",
        "# Safe to run as it is: every command that supports -WhatIf has it, so",
        "# PowerShell only says what it would do; commands whose cmdlet has no",
        "# -WhatIf are commented out. Review each, then remove -WhatIf (or the #)",
        "# to apply it. Run on a node of the cluster, as a cluster administrator.",
        "",
        "$ErrorActionPreference = 'Stop'",
        "",
    ]
    manual = []
    for fix in fixes:
        if not fix.commands:
            manual.append(fix)
            continue
        out.append(f"# --- {fix.code}: {fix.subject}")
        out += _comment(fix.note)
        for command in fix.commands:
            out.append(f"# {command.cmdlet}: {command.doc}")
            if command.supports_whatif:
                out.append(f"{command.text} -WhatIf")
            else:
                out.append(
                    f"# {command.cmdlet} has no -WhatIf: remove the # to run it."
                )
                out.append(f"# {command.text}")
        out.append("")
    if manual:
        out.append("# --- No command can fix these:")
        for fix in manual:
            out += _comment(f"{fix.code} {fix.subject}: {fix.note}")
        out.append("")
    return "\r\n".join(out)
