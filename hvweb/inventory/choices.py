"""Every choice the inventory stores, with a label and a display colour per value.

The stored values are ``migrator``'s vocabulary (``migrator.rules``,
``migrator.hyperv``): each class here is built from them, adding only the
labels and colours, and refuses a value it has no label for. A row's value
therefore goes into a rule snapshot unchanged, and a new value is added in
``migrator`` and labelled here, never typed twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from django.db import models

from migrator import rules
from migrator.hyperv import PRIORITIES, VERSIONS, supports_live_migration
from migrator.spec import POLICIES


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


def vocabulary(
    name: str,
    values: Iterable[str],
    shown: Mapping[str, tuple[str, str]],
    member: Callable[[str], str] = str.upper,
):
    """A ColouredChoices class of the stored ``values``, in their order.

    ``shown`` gives each value its ``(label, colour)``; a value without one,
    or one for no value, is a TypeError at import. ``member`` names the enum
    member of a value (``"up"`` is ``HostState.UP``).
    """
    values = tuple(values)
    if set(shown) != set(values):
        raise TypeError(
            f"{name}: labels for {sorted(set(shown) - set(values))} but no value, "
            f"values {sorted(set(values) - set(shown))} without a label"
        )
    cls = ColouredChoices(name, [(member(v), (v, shown[v][0])) for v in values])
    return colours(**{v: shown[v][1] for v in values})(cls)


def _named(names: Mapping[str, str], colour: Mapping[str, str]) -> dict:
    """Labels ``migrator`` already uses in its messages, with colours."""
    return {value: (label, colour[value]) for value, label in names.items()}


StorageKind = vocabulary(
    "StorageKind",
    rules.STORAGE_KINDS,
    {
        "fibre_channel": ("Fibre Channel SAN", "blue"),
        "iscsi": ("iSCSI SAN", "teal"),
        "none": ("None", "grey"),
    },
)

PerformanceOption = vocabulary(
    "PerformanceOption",
    rules.PERFORMANCE_OPTIONS,
    {
        "tcpip": ("TCP/IP", "grey"),
        "compression": ("Compression", "blue"),
        "smb": ("SMB", "purple"),
    },
)

#: Convergence policies (``migrator.policy``): what pre-copy does with a guest
#: that dirties memory faster than the link drains it.
MigrationPolicy = vocabulary(
    "MigrationPolicy",
    POLICIES,
    {
        "hyperv": ("Hyper-V (pass cap, then switch over)", "grey"),
        "throttle": ("Throttle the guest (auto-converge)", "orange"),
        "escalate": ("Escalate the downtime limit, else abort", "blue"),
        "suspend-if-needed": ("Escalate, throttle, suspend if needed", "purple"),
    },
    member=lambda v: v.upper().replace("-", "_"),
)

HyperVVersion = vocabulary(
    "HyperVVersion",
    VERSIONS,
    {
        v: (f"Hyper-V {v}", "green" if supports_live_migration(v) else "red")
        for v in VERSIONS
    },
    member=lambda v: f"V{v.replace(' ', '_')}",
)

CpuVendor = vocabulary(
    "CpuVendor",
    rules.CPU_VENDORS,
    _named(rules.CPU_VENDOR_NAMES, {"intel": "blue", "amd": "red"}),
)

DriveLetter = vocabulary(
    "DriveLetter",
    rules.DRIVE_LETTERS,
    {
        letter: (f"{letter}:", "green" if letter == "C" else "orange")
        for letter in rules.DRIVE_LETTERS
    },
    member=str,
)

HostState = vocabulary(
    "HostState",
    rules.HOST_STATES,
    {
        "up": ("Up", "green"),
        "paused": ("Paused (drained)", "orange"),
        "down": ("Down", "red"),
    },
)

CsvState = vocabulary(
    "CsvState",
    rules.CSV_STATES,
    {
        "online": ("Online", "green"),
        "redirected": ("Redirected access", "orange"),
        "offline": ("Offline", "red"),
    },
)

PowerState = vocabulary(
    "PowerState",
    rules.POWER_STATES,
    {
        "running": ("Running", "green"),
        "paused": ("Paused", "orange"),
        "saved": ("Saved", "blue"),
        "off": ("Off", "grey"),
    },
)

AutomaticStartAction = vocabulary(
    "AutomaticStartAction",
    rules.AUTOMATIC_START_ACTIONS,
    _named(
        rules.START_ACTION_NAMES,
        {"nothing": "green", "start_if_running": "orange", "always_start": "orange"},
    ),
)

DiskKind = vocabulary(
    "DiskKind",
    rules.DISK_KINDS,
    {
        "vhd": ("VHD", "grey"),
        "vhdx": ("VHDX", "blue"),
        "passthrough": ("Passthrough disk", "purple"),
    },
)

WorkloadProfile = vocabulary(
    "WorkloadProfile",
    rules.WORKLOAD_PROFILES,
    {
        "idle": ("Idle", "grey"),
        "web": ("Web server", "blue"),
        "database": ("Database", "purple"),
        "memory_hammer": ("Memory hammer", "red"),
    },
)


# Team roles are hvweb's own (access control): the engine knows nothing of them.
@colours(viewer="grey", operator="blue", administrator="purple")
class Role(ColouredChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMINISTRATOR = "administrator", "Administrator"


#: Cluster group priorities (``migrator.hyperv.PRIORITIES``), highest first.
Priority = models.IntegerChoices(
    "Priority",
    [
        (label.upper().replace(" ", "_"), (value, label))
        for value, label in PRIORITIES.items()
    ],
)
