"""The enumerations PowerShell writes, by number and by name, with their sources.

Windows PowerShell 5.1's ``ConvertTo-Json`` writes an enum as its number;
PowerShell 7 writes its name with ``-EnumsAsStrings``. Every table below maps
both to hvweb's stored vocabulary (``migrator.rules``), and every number is
the one Microsoft documents for the type behind the property (cited per table).
Names match case-insensitively, as PowerShell's own enum parsing does.

Standard library only: the parser that uses these runs without Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AUTOMATIC_START_ACTION",
    "CLUSTER_NODE_STATE",
    "CONTROLLER_TYPE",
    "CSV_RESOURCE_STATE",
    "CSV_STATE_INFO",
    "DRAIN_STATUS",
    "GROUP_PRIORITY",
    "MIGRATION_AUTHENTICATION",
    "MIGRATION_PERFORMANCE",
    "VM_STATE",
    "Enum",
    "Resolved",
]


@dataclass(frozen=True, slots=True)
class Resolved:
    """An enum value read from the file: hvweb's value, and the name Windows uses."""

    value: str
    name: str
    #: Set when the value is a transitional or degraded state recorded as the
    #: settled one: the dry run says so.
    note: str = ""


@dataclass(frozen=True, slots=True)
class Enum:
    """One PowerShell enumeration: its documented numbers and names.

    ``members`` maps each name to ``(number, hvweb value, note)``; a value of
    ``None`` means a documented member hvweb refuses (``refusal`` says why).
    """

    type_name: str
    source: str
    members: dict[str, tuple[int, str | None, str]]
    refusal: str = ""
    #: Numbers that mean different members in different Windows releases.
    ambiguous_from: int | None = None
    ambiguous_message: str = ""
    _by_number: dict[int, str] = field(init=False, repr=False, compare=False)
    _by_name: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_by_number", {n: name for name, (n, _, _) in self.members.items()}
        )
        object.__setattr__(
            self, "_by_name", {name.lower(): name for name in self.members}
        )

    def known(self) -> str:
        """The documented members, as ``2 Running, 3 Off, ...``."""
        return ", ".join(f"{n} {name}" for name, (n, _, _) in self.members.items())

    def resolve(self, raw: object) -> Resolved:
        """hvweb's value for a number or a name; ValueError saying why not."""
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise TypeError(f"a {self.type_name} is a number or a name")
        if isinstance(raw, int):
            if self.ambiguous_from is not None and raw >= self.ambiguous_from:
                raise ValueError(self.ambiguous_message.format(value=raw))
            name = self._by_number.get(raw)
            if name is None:
                raise ValueError(
                    f"{raw} is not a {self.type_name} that Microsoft documents "
                    f"(known: {self.known()}; see {self.source})"
                )
        else:
            text = raw.strip()
            if text.lstrip("-").isdigit():
                return self.resolve(int(text))
            name = self._by_name.get(text.lower())
            if name is None:
                names = ", ".join(self.members)
                raise ValueError(
                    f"{raw!r} is not a {self.type_name} name (known: {names}; see "
                    f"{self.source})"
                )
        number, value, note = self.members[name]
        if value is None:
            raise ValueError(
                f"{name} ({number}): {self.refusal}" if self.refusal else name
            )
        return Resolved(value=value, name=name, note=note)


# --- Get-VM: State ---------------------------------------------------------------
# Microsoft.HyperV.PowerShell.VMState mirrors Msvm_ComputerSystem's EnabledState
# and RequestStateChange values: Enabled (2), Disabled (3), Shut Down (4),
# Offline (6, saved), Quiesce (9, paused), Reboot (10), Reset (11), Saving
# (32773), Pausing (32776), Resuming (32777), FastSaved (32779), FastSaving
# (32780) - https://learn.microsoft.com/windows/win32/hyperv_v2/requeststatechange-msvm-computersystem
# The member names are the module's own (decompiled Microsoft.HyperV.PowerShell,
# nforgeio/neonSDK Lib/Neon.HyperV/HyperVWmiDriver/Microsoft/HyperV/PowerShell/
# VMState.cs).
# From 32781 on the numbers differ by release: Microsoft's page lists
# RunningCritical = 32781, the Windows Server 2016+ module ForceShutdown = 32781
# and RunningCritical = 32785 (so does eryph's VirtualMachineState, which maps by
# name for that reason). Those numbers are refused; their names are accepted.
_TRANSITION = "exported while {0}; recorded as {1}"
_CRITICAL = (
    "in a critical state ({0}): its storage is unreachable from its host; recorded "
    "as {1}"
)
VM_STATE = Enum(
    type_name="VM State",
    source="https://learn.microsoft.com/windows/win32/hyperv_v2/"
    "requeststatechange-msvm-computersystem",
    members={
        "Other": (1, None, ""),
        "Running": (2, "running", ""),
        "Off": (3, "off", ""),
        "Stopping": (4, "off", _TRANSITION.format("Stopping", "off")),
        "Saved": (6, "saved", ""),
        "Paused": (9, "paused", ""),
        "Starting": (10, "running", _TRANSITION.format("Starting", "running")),
        "Reset": (11, "running", _TRANSITION.format("Reset", "running")),
        "Saving": (32773, "saved", _TRANSITION.format("Saving", "saved")),
        "Pausing": (32776, "paused", _TRANSITION.format("Pausing", "paused")),
        "Resuming": (32777, "running", _TRANSITION.format("Resuming", "running")),
        "FastSaved": (32779, "saved", ""),
        "FastSaving": (32780, "saved", _TRANSITION.format("FastSaving", "saved")),
        # Names only (numbers from 32781 on are ambiguous, see above).
        "ForceShutdown": (32781, "off", _TRANSITION.format("ForceShutdown", "off")),
        "ForceReboot": (32782, "running", _TRANSITION.format("ForceReboot", "running")),
        "Hibernated": (32783, "saved", "hibernated; recorded as saved"),
        "ComponentServicing": (32784, None, ""),
        "RunningCritical": (
            32785,
            "running",
            _CRITICAL.format("RunningCritical", "running"),
        ),
        "OffCritical": (32786, "off", _CRITICAL.format("OffCritical", "off")),
        "StoppingCritical": (32787, "off", _CRITICAL.format("StoppingCritical", "off")),
        "SavedCritical": (32788, "saved", _CRITICAL.format("SavedCritical", "saved")),
        "PausedCritical": (
            32789,
            "paused",
            _CRITICAL.format("PausedCritical", "paused"),
        ),
        "StartingCritical": (
            32790,
            "running",
            _CRITICAL.format("StartingCritical", "running"),
        ),
        "ResetCritical": (
            32791,
            "running",
            _CRITICAL.format("ResetCritical", "running"),
        ),
        "SavingCritical": (32792, "saved", _CRITICAL.format("SavingCritical", "saved")),
        "PausingCritical": (
            32793,
            "paused",
            _CRITICAL.format("PausingCritical", "paused"),
        ),
        "ResumingCritical": (
            32794,
            "running",
            _CRITICAL.format("ResumingCritical", "running"),
        ),
        "FastSavedCritical": (
            32795,
            "saved",
            _CRITICAL.format("FastSavedCritical", "saved"),
        ),
        "FastSavingCritical": (
            32796,
            "saved",
            _CRITICAL.format("FastSavingCritical", "saved"),
        ),
    },  # fmt: skip
    refusal="hvweb cannot tell what this VM is doing: export again once it is "
    "Running, Off, Saved or Paused",
    ambiguous_from=32781,
    ambiguous_message="{value} means a different VM state in different Windows "
    "releases (Microsoft documents 32781 as RunningCritical, Windows Server 2016 "
    "and later use it for ForceShutdown): export with the state's name, as "
    "scripts/export-hyperv.ps1 or PowerShell 7's ConvertTo-Json -EnumsAsStrings "
    "write it",
)

# --- Get-VM: AutomaticStartAction -----------------------------------------------
# CIM_VirtualSystemSettingData.AutomaticStartupAction: None (2), Restart if
# previously active (3), Always startup (4) -
# https://learn.microsoft.com/windows/win32/hyperv_v2/cim-virtualsystemsettingdata
# PowerShell's StartAction names them Nothing = 2, StartIfRunning, Start
# (nforgeio/neonSDK .../Microsoft/HyperV/PowerShell/StartAction.cs; a real
# Get-VM's CLIXML shows <ToString>StartIfRunning</ToString><I32>3</I32>,
# pluralsight/PS-AutoLab-Env issue 237).
AUTOMATIC_START_ACTION = Enum(
    type_name="AutomaticStartAction",
    source="https://learn.microsoft.com/windows/win32/hyperv_v2/"
    "cim-virtualsystemsettingdata",
    members={
        "Nothing": (2, "nothing", ""),
        "StartIfRunning": (3, "start_if_running", ""),
        "Start": (4, "always_start", ""),
    },
)

# --- Get-VMHardDiskDrive: ControllerType ---------------------------------------
# Microsoft.HyperV.PowerShell.ControllerType: IDE, SCSI, PMEM (0, 1, 2) -
# nforgeio/neonSDK .../Microsoft/HyperV/PowerShell/ControllerType.cs;
# https://learn.microsoft.com/powershell/module/hyper-v/get-vmharddiskdrive
# (-ControllerType IDE | SCSI | PMEM).
CONTROLLER_TYPE = Enum(
    type_name="ControllerType",
    source="https://learn.microsoft.com/powershell/module/hyper-v/get-vmharddiskdrive",
    members={"IDE": (0, "IDE", ""), "SCSI": (1, "SCSI", ""), "PMEM": (2, "PMEM", "")},
)

# --- Get-VMHost: VirtualMachineMigrationPerformanceOption -----------------------
# Set-VMHost -VirtualMachineMigrationPerformanceOption <VMMigrationPerformance>
# accepts TCPIP, Compression, SMB (https://learn.microsoft.com/powershell/module/
# hyper-v/set-vmhost); the enum declares them in that order from 0
# (nforgeio/neonSDK .../Microsoft/HyperV/PowerShell/VMMigrationPerformance.cs).
MIGRATION_PERFORMANCE = Enum(
    type_name="VirtualMachineMigrationPerformanceOption",
    source="https://learn.microsoft.com/powershell/module/hyper-v/set-vmhost",
    members={
        "TCPIP": (0, "tcpip", ""),
        "Compression": (1, "compression", ""),
        "SMB": (2, "smb", ""),
    },
)

# --- Get-VMHost: VirtualMachineMigrationAuthenticationType ----------------------
# Msvm_VirtualSystemMigrationServiceSettingData.AuthenticationType: CredSSP (0),
# Kerberos (1) - https://learn.microsoft.com/windows/win32/hyperv_v2/
# msvm-virtualsystemmigrationservicesettingdata
MIGRATION_AUTHENTICATION = Enum(
    type_name="VirtualMachineMigrationAuthenticationType",
    source="https://learn.microsoft.com/windows/win32/hyperv_v2/"
    "msvm-virtualsystemmigrationservicesettingdata",
    members={"CredSSP": (0, "credssp", ""), "Kerberos": (1, "kerberos", "")},
)

# --- Get-ClusterNode: State ------------------------------------------------------
# CLUSTER_NODE_STATE: ClusterNodeStateUnknown = -1, ClusterNodeUp (0),
# ClusterNodeDown (1), ClusterNodePaused (2), ClusterNodeJoining (3) -
# https://learn.microsoft.com/windows/win32/api/clusapi/ne-clusapi-cluster_node_state
CLUSTER_NODE_STATE = Enum(
    type_name="cluster node State",
    source="https://learn.microsoft.com/windows/win32/api/clusapi/"
    "ne-clusapi-cluster_node_state",
    members={
        "Unknown": (-1, "down", "its cluster state was Unknown; recorded as down"),
        "Up": (0, "up", ""),
        "Down": (1, "down", ""),
        "Paused": (2, "paused", ""),
        "Joining": (3, "down", "joining the cluster; recorded as down"),
    },
)

# --- Get-ClusterNode: DrainStatus ------------------------------------------------
# CLUSTER_NODE_DRAIN_STATUS: NodeDrainStatusNotInitiated = 0, InProgress,
# Completed, Failed - https://learn.microsoft.com/windows/win32/api/clusapi/
# ne-clusapi-cluster_node_drain_status
DRAIN_STATUS = Enum(
    type_name="DrainStatus",
    source="https://learn.microsoft.com/windows/win32/api/clusapi/"
    "ne-clusapi-cluster_node_drain_status",
    members={
        "NotInitiated": (0, "not_initiated", ""),
        "InProgress": (1, "in_progress", ""),
        "Completed": (2, "completed", ""),
        "Failed": (3, "failed", ""),
    },
)

# --- Get-ClusterSharedVolume: State ----------------------------------------------
# CLUSTER_RESOURCE_STATE: ClusterResourceStateUnknown = -1, Inherited (0),
# Initializing (1), Online (2), Offline (3), Failed (4), Pending = 128,
# OnlinePending (129), OfflinePending (130) - https://learn.microsoft.com/
# windows/win32/api/msclus/ne-msclus-cluster_resource_state
CSV_RESOURCE_STATE = Enum(
    type_name="cluster resource State",
    source="https://learn.microsoft.com/windows/win32/api/msclus/"
    "ne-msclus-cluster_resource_state",
    members={
        "Unknown": (-1, "offline", "its state was Unknown; recorded as offline"),
        "Inherited": (0, "offline", "Inherited; recorded as offline"),
        "Initializing": (1, "offline", "Initializing; recorded as offline"),
        "Online": (2, "online", ""),
        "Offline": (3, "offline", ""),
        "Failed": (4, "offline", "Failed; recorded as offline"),
        "Pending": (128, "offline", "Pending; recorded as offline"),
        "OnlinePending": (129, "offline", "OnlinePending; recorded as offline"),
        "OfflinePending": (130, "offline", "OfflinePending; recorded as offline"),
    },
)

# --- Get-ClusterSharedVolumeState: StateInfo ---------------------------------------
# CLUSTER_SHARED_VOLUME_STATE: SharedVolumeStateUnavailable = 0, Paused = 1,
# Active = 2, ActiveRedirected = 3, ActiveVolumeRedirected = 4 -
# https://learn.microsoft.com/windows/win32/api/clusapi/ne-clusapi-cluster_shared_volume_state
# The cmdlet names them Unavailable, Paused, Direct, FileSystemRedirected and
# BlockRedirected ("Understanding the state of your Cluster Shared Volumes",
# Microsoft's Failover Clustering blog, 2013). The value is whether the node
# reaches the volume at all.
CSV_STATE_INFO = Enum(
    type_name="CSV StateInfo",
    source="https://learn.microsoft.com/windows/win32/api/clusapi/"
    "ne-clusapi-cluster_shared_volume_state",
    members={
        "Unavailable": (0, "unreachable", ""),
        "Paused": (1, "unreachable", ""),
        "Direct": (2, "reachable", ""),
        "FileSystemRedirected": (3, "reachable", ""),
        "BlockRedirected": (4, "reachable", ""),
    },
)

# --- Get-ClusterGroup: Priority ----------------------------------------------------
# CLUSTER_GROUP_PRIORITY: PriorityDisabled = 0 (No Auto Start), PriorityLow =
# 1000, PriorityMedium = 2000 (the default), PriorityHigh = 3000 -
# https://learn.microsoft.com/windows/win32/api/clusapi/ne-clusapi-cluster_group_priority
GROUP_PRIORITY = Enum(
    type_name="cluster group Priority",
    source="https://learn.microsoft.com/windows/win32/api/clusapi/"
    "ne-clusapi-cluster_group_priority",
    members={
        "NoAutoStart": (0, "0", ""),
        "Low": (1000, "1000", ""),
        "Medium": (2000, "2000", ""),
        "High": (3000, "3000", ""),
    },
)
