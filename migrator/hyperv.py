"""Facts about Hyper-V releases that both the rules and the engine rely on."""

from __future__ import annotations

#: Hyper-V releases, oldest first. The order is meaningful: rules compare positions.
VERSIONS: tuple[str, ...] = (
    "2008",
    "2008 R2",
    "2012",
    "2012 R2",
    "2016",
    "2019",
    "2022",
    "2025",
)

#: The first release that can live-migrate (the seed: "Hyper-V 2008 R2 must be
#: deployed on both hosts. The first version of Hyper-V does not support live
#: migration.").
FIRST_LIVE_MIGRATION_VERSION = "2008 R2"

#: From this release on Hyper-V stops pre-copy after 5 passes instead of 10.
FIVE_PASS_CAP_VERSION = "2012 R2"

# The most one virtual machine may have: Microsoft's "Plan for Hyper-V
# scalability in Windows Server", maximums for virtual machines, Windows Server
# 2025 (the newest release above), generation 2: 2,048 virtual processors and
# 240 TB of memory (generation 1: 64 and 1 TB).
# https://learn.microsoft.com/windows-server/virtualization/hyper-v/plan/plan-hyper-v-scalability-in-windows-server

#: Virtual processors of a generation 2 VM on Windows Server 2025.
MAX_VM_VCPUS = 2048
#: 240 TB of memory for a generation 2 VM, in MiB (251,658,240).
MAX_VM_MEMORY_MIB = 240 * 1024 * 1024


def version_index(version: str) -> int:
    """Position of ``version`` in :data:`VERSIONS`; unknown ones raise ValueError."""
    try:
        return VERSIONS.index(version)
    except ValueError:
        raise ValueError(
            f"unknown Hyper-V version {version!r}; "
            f"expected one of {', '.join(VERSIONS)}"
        ) from None


def supports_live_migration(version: str) -> bool:
    """True for Hyper-V 2008 R2 and later."""
    return version_index(version) >= version_index(FIRST_LIVE_MIGRATION_VERSION)


def pass_cap(version: str) -> int:
    """Most pre-copy passes Hyper-V makes: 10 up to 2012, 5 from 2012 R2 on."""
    if version_index(version) >= version_index(FIVE_PASS_CAP_VERSION):
        return 5
    return 10


# Cluster group priorities and how a drain moves each VM. Source: the Failover
# Clustering team, "Configuring How VMs Are Moved when a Node is Drained"
# (https://techcommunity.microsoft.com/t5/failover-clustering/configuring-how-vms-are-moved-when-a-node-is-drained/ba-p/371848):
# "You can set the priority to High (3000), Medium (2000) or Low (1000)" (and
# No Auto Start, 0); "The default behavior for VMs is to live migrate the high
# and medium priority VMs, and quick migrate the low priority VMs", set by the
# cluster's MoveTypeThreshold (default 2000).

#: Priority values, highest first, with Failover Cluster Manager's names.
PRIORITIES: dict[int, str] = {
    3000: "High",
    2000: "Medium",
    1000: "Low",
    0: "No Auto Start",
}
#: A new VM's priority.
DEFAULT_PRIORITY = 2000
#: The cluster's ``MoveTypeThreshold``: a drain live-migrates VMs at or above it.
DEFAULT_MOVE_TYPE_THRESHOLD = 2000


def drain_move_kind(priority: int, power_state: str, threshold: int) -> str:
    """How a drain moves a VM: ``live`` or ``quick`` (save, move, resume).

    A running VM of at least ``threshold`` priority live-migrates; a running
    one below it, and one that is not running (off, saved, paused), moves by
    quick migration.
    """
    if power_state == "running" and priority >= threshold:
        return "live"
    return "quick"
