"""Every choice the inventory stores, with a display colour beside each value.

The stored values are the vocabulary of ``migrator.rules`` (a test holds them
equal), so a row's value goes into a snapshot unchanged.
"""

from __future__ import annotations

from django.db import models

from migrator.hyperv import VERSIONS, supports_live_migration
from migrator.rules import DRIVE_LETTERS


class ColouredChoices(models.TextChoices):
    """TextChoices whose members carry a display colour (``colour_map``)."""

    @property
    def colour(self) -> str:
        return type(self).colour_map[self.value]  # type: ignore[attr-defined]

    @classmethod
    def colour_of(cls, value: str) -> str:
        return cls.colour_map.get(value, "grey")  # type: ignore[attr-defined]


def colours(**by_value: str):
    """Attach ``colour_map`` to a choices class, insisting every value has one."""

    def decorate(cls):
        missing = set(cls.values) - set(by_value)
        if missing:
            raise TypeError(f"{cls.__name__}: no colour for {sorted(missing)}")
        cls.colour_map = dict(by_value)
        return cls

    return decorate


@colours(fibre_channel="blue", iscsi="teal", none="grey")
class StorageKind(ColouredChoices):
    FIBRE_CHANNEL = "fibre_channel", "Fibre Channel SAN"
    ISCSI = "iscsi", "iSCSI SAN"
    NONE = "none", "None"


@colours(tcpip="grey", compression="blue", smb="purple")
class PerformanceOption(ColouredChoices):
    TCPIP = "tcpip", "TCP/IP"
    COMPRESSION = "compression", "Compression"
    SMB = "smb", "SMB"


# Built from migrator.hyperv.VERSIONS so that the list lives in one place.
HyperVVersion = colours(
    **{v: ("green" if supports_live_migration(v) else "red") for v in VERSIONS}
)(
    ColouredChoices(
        "HyperVVersion",
        [(f"V{v.replace(' ', '_')}", (v, f"Hyper-V {v}")) for v in VERSIONS],
    )
)


@colours(intel="blue", amd="red")
class CpuVendor(ColouredChoices):
    INTEL = "intel", "Intel"
    AMD = "amd", "AMD"


DriveLetter = colours(
    **{letter: ("green" if letter == "C" else "orange") for letter in DRIVE_LETTERS}
)(
    ColouredChoices(
        "DriveLetter", [(letter, (letter, f"{letter}:")) for letter in DRIVE_LETTERS]
    )
)


@colours(up="green", paused="orange", down="red")
class HostState(ColouredChoices):
    UP = "up", "Up"
    PAUSED = "paused", "Paused (drained)"
    DOWN = "down", "Down"


@colours(online="green", redirected="orange", offline="red")
class CsvState(ColouredChoices):
    ONLINE = "online", "Online"
    REDIRECTED = "redirected", "Redirected access"
    OFFLINE = "offline", "Offline"


@colours(running="green", paused="orange", saved="blue", off="grey")
class PowerState(ColouredChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    SAVED = "saved", "Saved"
    OFF = "off", "Off"


@colours(nothing="green", start_if_running="orange", always_start="orange")
class AutomaticStartAction(ColouredChoices):
    NOTHING = "nothing", "Nothing"
    START_IF_RUNNING = "start_if_running", "Start if it was running"
    ALWAYS_START = "always_start", "Always start"


@colours(vhd="grey", vhdx="blue", passthrough="purple")
class DiskKind(ColouredChoices):
    VHD = "vhd", "VHD"
    VHDX = "vhdx", "VHDX"
    PASSTHROUGH = "passthrough", "Passthrough disk"


@colours(idle="grey", web="blue", database="purple", memory_hammer="red")
class WorkloadProfile(ColouredChoices):
    IDLE = "idle", "Idle"
    WEB = "web", "Web server"
    DATABASE = "database", "Database"
    MEMORY_HAMMER = "memory_hammer", "Memory hammer"


@colours(viewer="grey", operator="blue", administrator="purple")
class Role(ColouredChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMINISTRATOR = "administrator", "Administrator"
