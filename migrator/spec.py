"""Plain, validated inputs of one migration: the spec, the guest workload, faults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import hyperv
from .errors import SpecError

__all__ = [
    "GIB",
    "KIB",
    "MIB",
    "MOVE_KINDS",
    "OPTION_LABELS",
    "PERFORMANCE_OPTIONS",
    "POLICIES",
    "WORKLOAD_KINDS",
    "Faults",
    "MigrationSpec",
    "WorkloadSpec",
]

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

#: Guest workload kinds, in the order the CLI lists them.
WORKLOAD_KINDS: tuple[str, ...] = ("idle", "uniform", "hotcold", "sweep")

#: Hyper-V's live-migration performance options (``Set-VMHost
#: -VirtualMachineMigrationPerformanceOption TCPIP|Compression|SMB``), as stored.
PERFORMANCE_OPTIONS: tuple[str, ...] = ("tcpip", "compression", "smb")
#: Their names in Hyper-V Manager.
OPTION_LABELS: dict[str, str] = {
    "tcpip": "TCP/IP",
    "compression": "Compression",
    "smb": "SMB",
}

#: How a VM moves between hosts of a failover cluster. ``live``: pre-copy while
#: the guest runs, a short blackout at the end. ``quick``: "putting a VM into
#: saved state, moving it to another node, and then resuming from saved state
#: ... quick migration does cause clients to be disconnected during the move"
#: (Failover Clustering team, "Configuring How VMs Are Moved when a Node is
#: Drained", https://techcommunity.microsoft.com/t5/failover-clustering/configuring-how-vms-are-moved-when-a-node-is-drained/ba-p/371848):
#: the guest writes nothing while its memory travels, and its downtime is the
#: whole memory transfer.
MOVE_KINDS: tuple[str, ...] = ("live", "quick")

#: Convergence policies (see :mod:`migrator.policy`), the default first.
POLICIES: tuple[str, ...] = ("hyperv", "throttle", "escalate", "suspend-if-needed")

#: Share of a page one guest write changes, unless a workload says otherwise.
#: A proxy from QEMU's measurements (docs/multi-thread-compression.txt): for a
#: guest "which write[s] random numbers to RAM block areas periodically", zlib
#: left 1,699,824 kB of 4,274,143 kB to send (0.40), and QEMU summarises it as
#: "reduce the data transferred about 60%"; Microsoft expects Hyper-V's
#: Compression to halve a live migration's time (Ben Armstrong, "Faster Live
#: Migration with Compression in Windows Server 2012 R2", 2013). A delta of
#: 0.4 of a page makes the engine's Compression save about that much.
DEFAULT_PAGE_CHANGE_SHARE = 0.4
#: Bits of page data per second the source's spare CPU delta-encodes: the low
#: end of XBZRLE's "sustained bandwidth of 1.5-2.2 GB/s for typical workloads"
#: (A. Shribman, "[PATCH v3] XBZRLE delta for live migration of large memory
#: apps", qemu-devel, 2 August 2011).
DEFAULT_COMPRESSION_BPS = 12e9
#: Most bits per second one TCP connection carries: the TCP/IP and Compression
#: options move a VM over one connection (port 6600), and one connection's
#: processing saturates a core: "A single live migration used only around
#: 4Gbps--it was maxing out a single core" (J. Savill, "Understand bandwidth
#: usage of 10Gbps network adapters", Windows IT Pro). SMB (SMB Direct on RDMA
#: NICs, SMB Multichannel over several connections) is not held to it: "Nearly
#: 10 Gbps over a single NIC" (A. Finn, "Comparing TCPIP, Compressed, and SMB
#: WS2012 R2 Hyper-V Live Migration Speeds").
DEFAULT_TCP_STREAM_BPS = 4e9


def _finite(name: str, value: float, *, minimum: float = 0.0) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SpecError(name, f"must be a number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise SpecError(name, f"must be a finite number ≥ {minimum:g}, got {value!r}")


def _integer(name: str, value: int, *, minimum: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(name, f"must be an integer, got {value!r}")
    if value < minimum:
        raise SpecError(name, f"must be ≥ {minimum}, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    """What the guest does to its memory while it is being moved.

    ``idle`` writes nothing. ``uniform`` spreads ``write_rate`` page writes per
    simulated second evenly over ``working_set_pages`` pages chosen uniformly
    across memory. ``hotcold`` sends ``hot_write_share`` of the writes to the
    first ``hot_fraction`` of that working set and the rest to the remainder.
    ``sweep`` is a memory hammer: it writes page after page through a contiguous
    region of ``working_set_pages`` pages, wrapping at its end.
    ``page_change_share`` is the share of a page one write changes (its first
    ``round(share · page_size)`` bytes get new, incompressible content), which
    decides what a delta of a re-sent page costs under Compression.
    """

    kind: str = "idle"
    working_set_pages: int = 0
    write_rate: float = 0.0
    hot_fraction: float = 0.1
    hot_write_share: float = 0.9
    page_change_share: float = DEFAULT_PAGE_CHANGE_SHARE

    def __post_init__(self) -> None:
        if self.kind not in WORKLOAD_KINDS:
            raise SpecError(
                "workload",
                f"must be one of {', '.join(WORKLOAD_KINDS)}, got {self.kind!r}",
            )
        _integer("working_set_pages", self.working_set_pages)
        _finite("write_rate", self.write_rate)
        _finite("hot_fraction", self.hot_fraction)
        _finite("hot_write_share", self.hot_write_share)
        if not 0.0 < self.hot_fraction <= 1.0:
            raise SpecError("hot_fraction", "must be in (0, 1]")
        if self.hot_write_share > 1.0:
            raise SpecError("hot_write_share", "must be in [0, 1]")
        _finite("page_change_share", self.page_change_share)
        if not 0.0 < self.page_change_share <= 1.0:
            raise SpecError("page_change_share", "must be in (0, 1]")
        if self.writes and self.working_set_pages == 0:
            raise SpecError(
                "working_set_pages", f"a {self.kind} workload writing needs pages"
            )

    @property
    def writes(self) -> bool:
        """True when the guest writes at all."""
        return self.kind != "idle" and self.write_rate > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "kind": self.kind,
            "working_set_pages": self.working_set_pages,
            "write_rate": self.write_rate,
            "hot_fraction": self.hot_fraction,
            "hot_write_share": self.hot_write_share,
            "page_change_share": self.page_change_share,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadSpec:
        """Inverse of :meth:`to_dict`; unknown keys are refused by name."""
        return cls(**_known(cls, data))


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationSpec:
    """Everything that decides one simulated live migration.

    Sizes are bytes, ``bandwidth_bps`` is bits per second, times are simulated
    seconds. ``max_passes`` defaults to the pass cap of ``host_version``.
    ``downtime_limit_s`` of 0 disables the downtime stop rule. The stage costs
    (configuration size over the link, VM creation, storage hand-off, online,
    network redirection) are small constants of simulated time.

    ``performance_option`` is Hyper-V's (:data:`PERFORMANCE_OPTIONS`): ``tcpip``
    and ``compression`` move the VM over one TCP connection, which carries at
    most ``tcp_stream_bps``; ``compression`` also sends re-sent pages as
    deltas, encoded at ``compression_bps`` (bits of page data per second; when
    that is no faster than the link, Hyper-V sends them plain, as TCP/IP);
    ``smb`` uses the whole ``bandwidth_bps``. ``compression`` is the older
    spelling: ``None`` (the default) follows ``performance_option``; ``True``
    turns the default ``tcpip`` into ``compression``; an explicit value that
    contradicts the option is refused.
    ``policy`` names the convergence policy (:data:`POLICIES`).
    ``move_kind`` (:data:`MOVE_KINDS`): a ``quick`` migration saves the guest
    first, so it writes nothing while one pass copies its memory, and the
    blackout lasts from the start of the memory transfer to the switchover.
    """

    memory_bytes: int = GIB
    page_size: int = 4 * KIB
    bandwidth_bps: float = 1e9
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    seed: int = 0
    downtime_limit_s: float = 0.3
    min_dirty_pages: int = 50
    host_version: str = "2008 R2"
    max_passes: int | None = None
    state_size: int = 64 * KIB
    zero_fraction: float = 0.0
    performance_option: str = "tcpip"
    compression: bool | None = None
    compression_bps: float = DEFAULT_COMPRESSION_BPS
    tcp_stream_bps: float = DEFAULT_TCP_STREAM_BPS
    policy: str = "hyperv"
    move_kind: str = "live"
    memory_budget_bytes: int = GIB
    config_bytes: int = 16 * KIB
    creation_s: float = 0.05
    storage_handoff_s: float = 0.01
    online_s: float = 0.002
    redirection_s: float = 0.005
    batch_pages: int = 0
    progress_pages: int = 0

    def __post_init__(self) -> None:
        ps = self.page_size
        _integer("page_size", ps, minimum=512)
        if ps & (ps - 1) or ps > 2 * MIB:
            raise SpecError("page_size", f"must be a power of two ≤ 2MiB, got {ps}")
        _integer("memory_bytes", self.memory_bytes, minimum=ps)
        if self.memory_bytes % ps:
            raise SpecError("memory_bytes", "must be a whole number of pages")
        _finite("bandwidth_bps", self.bandwidth_bps)
        if self.bandwidth_bps <= 0:
            raise SpecError("bandwidth_bps", "must be positive")
        if not isinstance(self.workload, WorkloadSpec):
            raise SpecError("workload", "must be a WorkloadSpec")
        if self.workload.working_set_pages > self.pages:
            raise SpecError(
                "working_set_pages",
                f"{self.workload.working_set_pages} pages exceed the VM's "
                f"{self.pages} pages",
            )
        _integer("seed", self.seed, minimum=-(1 << 63))
        _finite("downtime_limit_s", self.downtime_limit_s)
        _integer("min_dirty_pages", self.min_dirty_pages)
        try:
            if not hyperv.supports_live_migration(self.host_version):
                raise SpecError(
                    "host_version",
                    f"Hyper-V {self.host_version} cannot live-migrate; "
                    f"deploy {hyperv.FIRST_LIVE_MIGRATION_VERSION} or later",
                )
        except ValueError as exc:
            if isinstance(exc, SpecError):
                raise
            raise SpecError("host_version", str(exc)) from None
        if self.max_passes is not None:
            _integer("max_passes", self.max_passes, minimum=1)
        _integer("state_size", self.state_size)
        _finite("zero_fraction", self.zero_fraction)
        if self.zero_fraction > 1.0:
            raise SpecError("zero_fraction", "must be in [0, 1]")
        if self.compression is not None and not isinstance(self.compression, bool):
            raise SpecError("compression", "must be a bool or None")
        if self.performance_option not in PERFORMANCE_OPTIONS:
            raise SpecError(
                "performance_option",
                f"must be one of {', '.join(PERFORMANCE_OPTIONS)}, "
                f"got {self.performance_option!r}",
            )
        if self.compression and self.performance_option == "tcpip":
            object.__setattr__(self, "performance_option", "compression")
        if self.compression is not None and self.compression != (
            self.performance_option == "compression"
        ):
            raise SpecError(
                "compression",
                f"contradicts performance_option {self.performance_option!r}",
            )
        for name in ("compression_bps", "tcp_stream_bps"):
            _finite(name, getattr(self, name))
            if getattr(self, name) <= 0:
                raise SpecError(name, "must be positive")
        if self.policy not in POLICIES:
            raise SpecError(
                "policy", f"must be one of {', '.join(POLICIES)}, got {self.policy!r}"
            )
        if self.move_kind not in MOVE_KINDS:
            raise SpecError(
                "move_kind",
                f"must be one of {', '.join(MOVE_KINDS)}, got {self.move_kind!r}",
            )
        _integer("memory_budget_bytes", self.memory_budget_bytes)
        if self.memory_budget_bytes < 16 * (2 * ps + 2):
            raise SpecError(
                "memory_budget_bytes", "must hold at least 16 pages twice over"
            )
        _integer("config_bytes", self.config_bytes)
        for name in (
            "creation_s",
            "storage_handoff_s",
            "online_s",
            "redirection_s",
        ):
            _finite(name, getattr(self, name))
        _integer("batch_pages", self.batch_pages)
        _integer("progress_pages", self.progress_pages)

    @property
    def pages(self) -> int:
        """Pages of guest memory."""
        return self.memory_bytes // self.page_size

    @property
    def quick(self) -> bool:
        """True for a quick migration (save, move, resume)."""
        return self.move_kind == "quick"

    @property
    def moving_workload(self) -> WorkloadSpec:
        """The guest's writes while its memory is copied: none once it is saved."""
        return WorkloadSpec() if self.quick else self.workload

    @property
    def pass_cap(self) -> int:
        """Most live pre-copy passes: ``max_passes`` or the host version's cap."""
        if self.max_passes is not None:
            return self.max_passes
        return hyperv.pass_cap(self.host_version)

    @property
    def link_bps(self) -> float:
        """Bits per second the move's pages cross the link at (see the class)."""
        if self.performance_option == "smb":
            return self.bandwidth_bps
        return min(self.bandwidth_bps, self.tcp_stream_bps)

    @property
    def compresses(self) -> bool:
        """True when re-sent pages go as deltas: Compression, and worth it."""
        return (
            self.performance_option == "compression"
            and self.compression_bps > self.link_bps
        )

    @property
    def zero_pages(self) -> int:
        """Pages that start zero: exactly ``round(zero_fraction · pages)``."""
        return round(self.zero_fraction * self.pages)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the workload nested)."""
        out: dict[str, Any] = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "workload"
        }
        out["workload"] = self.workload.to_dict()
        out["pass_cap"] = self.pass_cap
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MigrationSpec:
        """Inverse of :meth:`to_dict` (``pass_cap`` is derived and ignored)."""
        values = {k: v for k, v in data.items() if k != "pass_cap"}
        if isinstance(values.get("workload"), dict):
            values["workload"] = WorkloadSpec.from_dict(values["workload"])
        return cls(**_known(cls, values))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError(cls.__name__, f"expected a dict, got {type(data).__name__}")
    unknown = set(data) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if unknown:
        name = min(unknown)
        raise SpecError(name, f"is not a field of {cls.__name__}")
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Faults to inject into one migration (drills and tests).

    ``link_failure_pass``: the link drops halfway through that pre-copy pass (a
    pass that never happens never fails). ``link_failure_byte``: the link drops
    once that many bytes have crossed it (configuration, pages, state).
    ``refuse_destination``: the destination host refuses to create the VM.
    ``corrupt_page``: the destination's copy of that page is damaged in transit
    during the state transfer, which verification must catch.
    """

    link_failure_pass: int | None = None
    link_failure_byte: int | None = None
    refuse_destination: bool = False
    corrupt_page: int | None = None

    def __post_init__(self) -> None:
        if self.link_failure_pass is not None:
            _integer("link_failure_pass", self.link_failure_pass, minimum=1)
        if self.link_failure_byte is not None:
            _integer("link_failure_byte", self.link_failure_byte)
        if not isinstance(self.refuse_destination, bool):
            raise SpecError("refuse_destination", "must be a bool")
        if self.corrupt_page is not None:
            _integer("corrupt_page", self.corrupt_page)
