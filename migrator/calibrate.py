"""``python -m migrator calibrate``: the model against the engine, row by row.

Each row moves one of the demo's VMs (its workload profile, size and link, as
the console builds the spec) under one performance option and one policy,
with the engine, for several seeds, and sets the median of what happened
beside what :func:`~migrator.predict.predict` said. A row meets its targets
when the passes are equal (within one where the guest was throttled), both
switch over or both abort, bytes and total time are within 15 %, and the
downtime within 25 % or 5 ms.

This module is shell: it runs engines and prints.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import IO, Any

from .engine import migrate
from .predict import Prediction, predict
from .spec import (
    MIB,
    OPTION_LABELS,
    PERFORMANCE_OPTIONS,
    POLICIES,
    MigrationSpec,
    WorkloadSpec,
)

__all__ = ["DEMO_PROFILES", "Profile", "Row", "calibrate", "demo_spec", "main"]

#: Targets: bytes and total time within 15 %, downtime within 25 % or 5 ms.
BYTES_TOLERANCE = 0.15
TIME_TOLERANCE = 0.15
DOWNTIME_TOLERANCE = 0.25
DOWNTIME_SLACK_S = 0.005


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A demo workload profile and the VM of the demo that runs it."""

    name: str
    vm: str
    memory_mib: int
    kind: str
    write_rate: float
    working_set_pages: int


#: The demo's profiles: writes/s and working sets from ``_WORKLOADS`` in
#: hvweb/inventory/demo.py, each with the first CLU-PROD VM of ``PROD_VMS``
#: running it, and the kinds of ``WORKLOAD_KIND`` in hvweb/moves/runner.py
#: (an idle VM's writes are dropped there). A test holds them equal.
DEMO_PROFILES: tuple[Profile, ...] = (
    Profile(name="idle", vm="prod-idle-1", memory_mib=512, kind="idle",
            write_rate=0.0, working_set_pages=0),
    Profile(name="web", vm="prod-web-1", memory_mib=1024, kind="hotcold",
            write_rate=2_000.0, working_set_pages=8_192),
    Profile(name="database", vm="prod-db-1", memory_mib=2048, kind="uniform",
            write_rate=8_000.0, working_set_pages=32_768),
    Profile(name="memory hammer", vm="prod-cache-1", memory_mib=1536, kind="sweep",
            write_rate=40_000.0, working_set_pages=65_536),
)  # fmt: skip

#: The demo's cluster and host settings, as ``build_spec`` in
#: hvweb/moves/runner.py applies them: CLU-PROD's 1,000 Mbit/s link, Hyper-V
#: 2019 (5 passes), the 300 ms default limit, 25 % zero pages, and the default
#: ``HVWEB_MIGRATION_MEMORY_MIB`` of 512 as the memory budget.
DEMO_LINK_BPS = 1_000 * 1e6
DEMO_HOST_VERSION = "2019"
DEMO_DOWNTIME_LIMIT_S = 0.3
DEMO_ZERO_FRACTION = 0.25
DEMO_BUDGET_BYTES = 512 * MIB


def demo_spec(
    profile: Profile,
    option: str = "tcpip",
    *,
    policy: str = "hyperv",
    seed: int = 0,
    budget: int = DEMO_BUDGET_BYTES,
) -> MigrationSpec:
    """The spec the console builds for moving ``profile``'s VM with ``option``."""
    writes = profile.kind != "idle" and profile.write_rate > 0
    return MigrationSpec(
        memory_bytes=profile.memory_mib * MIB,
        page_size=4096,
        bandwidth_bps=DEMO_LINK_BPS,
        workload=WorkloadSpec(
            kind=profile.kind if writes else "idle",
            working_set_pages=profile.working_set_pages if writes else 0,
            write_rate=profile.write_rate if writes else 0.0,
        ),
        seed=seed,
        downtime_limit_s=DEMO_DOWNTIME_LIMIT_S,
        host_version=DEMO_HOST_VERSION,
        performance_option=option,
        policy=policy,
        memory_budget_bytes=budget,
        zero_fraction=DEMO_ZERO_FRACTION,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One profile under one option: the model's figures and the engine's."""

    profile: str
    option: str
    policy: str
    seeds: int
    predicted: Prediction
    passes: int
    bytes_sent: float
    total_time_s: float
    downtime_s: float
    downtime_range_s: tuple[float, float]
    aborted: bool
    throttled: bool

    @property
    def bytes_ratio(self) -> float:
        return _ratio(self.bytes_sent, self.predicted.bytes_sent)

    @property
    def time_ratio(self) -> float:
        return _ratio(self.total_time_s, self.predicted.total_time_s)

    @property
    def downtime_ratio(self) -> float:
        return _ratio(self.downtime_s, self.predicted.downtime_s)

    @property
    def passes_ok(self) -> bool:
        slack = 1 if self.throttled else 0
        return abs(self.passes - self.predicted.passes) <= slack

    @property
    def downtime_ok(self) -> bool:
        gap = abs(self.downtime_s - self.predicted.downtime_s)
        return gap <= DOWNTIME_SLACK_S or abs(self.downtime_ratio - 1) <= (
            DOWNTIME_TOLERANCE
        )

    @property
    def ok(self) -> bool:
        """True when the row meets every target."""
        return (
            self.passes_ok
            and self.aborted == self.predicted.aborted
            and abs(self.bytes_ratio - 1) <= BYTES_TOLERANCE
            and abs(self.time_ratio - 1) <= TIME_TOLERANCE
            and self.downtime_ok
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        p = self.predicted
        return {
            "profile": self.profile,
            "option": self.option,
            "policy": self.policy,
            "seeds": self.seeds,
            "passes": {"predicted": p.passes, "actual": self.passes},
            "aborted": {"predicted": p.aborted, "actual": self.aborted},
            "throttled": self.throttled,
            "bytes_sent": {
                "predicted": p.bytes_sent,
                "actual": self.bytes_sent,
                "ratio": self.bytes_ratio,
            },
            "total_time_s": {
                "predicted": p.total_time_s,
                "actual": self.total_time_s,
                "ratio": self.time_ratio,
            },
            "downtime_s": {
                "predicted": p.downtime_s,
                "actual": self.downtime_s,
                "ratio": self.downtime_ratio,
                "actual_range": list(self.downtime_range_s),
            },
            "ok": self.ok,
        }


def _ratio(actual: float, predicted: float) -> float:
    if predicted:
        return actual / predicted
    return 1.0 if not actual else math.inf


def calibrate(
    *,
    profiles: Sequence[Profile] = DEMO_PROFILES,
    options: Sequence[str] = PERFORMANCE_OPTIONS,
    policies: Sequence[str] = ("hyperv",),
    seeds: Sequence[int] = (1, 2, 3, 4, 5),
    budget: int = DEMO_BUDGET_BYTES,
    log: Callable[[str], None] = lambda _: None,
) -> list[Row]:
    """One row per profile, option and policy; the engine's figures are medians."""
    rows = []
    for profile in profiles:
        for option in options:
            for policy in policies:
                log(f"{profile.name} with {OPTION_LABELS[option]}, {policy}")
                spec = demo_spec(profile, option, policy=policy, budget=budget)
                rows.append(_row(profile, spec, seeds))
    return rows


def _row(profile: Profile, spec: MigrationSpec, seeds: Sequence[int]) -> Row:
    results = [migrate(replace(spec, seed=seed)) for seed in seeds]
    downtimes = [r.downtime_s for r in results]
    predicted = predict(spec)
    return Row(
        profile=profile.name,
        option=spec.performance_option,
        policy=spec.policy,
        seeds=len(results),
        predicted=predicted,
        passes=round(statistics.median(r.passes for r in results)),
        bytes_sent=statistics.median(r.bytes_sent for r in results),
        total_time_s=statistics.median(r.total_time_s for r in results),
        downtime_s=statistics.median(downtimes),
        downtime_range_s=(min(downtimes), max(downtimes)),
        aborted=sum(r.aborted for r in results) * 2 > len(results),
        throttled=any(r.guest_slowdown_pct for r in results)
        or predicted.guest_slowdown_pct > 0,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def table(rows: Sequence[Row], *, budget: int) -> str:
    """The rows as a fixed-width table."""
    seeds = rows[0].seeds if rows else 0
    lines = [
        f"migrator calibrate: the demo's VMs, predicted against the engine "
        f"(median of {seeds} seeds; memory budget {budget // MIB} MiB)",
        f"{'profile':14} {'option':12} {'policy':18} {'passes':>7}  "
        f"{'MiB sent (ratio)':>22}  {'total s (ratio)':>22}  "
        f"{'downtime ms (ratio)':>26}  result",
    ]
    for r in rows:
        p = r.predicted
        lines.append(
            f"{r.profile:14} {OPTION_LABELS[r.option]:12} {r.policy:18} "
            f"{p.passes:>3}/{r.passes:<3}  "
            f"{p.bytes_sent / MIB:8.1f}/{r.bytes_sent / MIB:8.1f} ({r.bytes_ratio:.3f})"
            f"  {p.total_time_s:7.3f}/{r.total_time_s:7.3f} ({r.time_ratio:.3f})"
            f"  {_ms(p.downtime_s):>8}/{_ms(r.downtime_s):>8} "
            f"({r.downtime_ratio:6.3f})  {'PASS' if r.ok else 'FAIL'}"
            + ("  aborts" if p.aborted else "")
            + (
                f"  slowed {r.predicted.guest_slowdown_pct:.0f} %"
                if r.throttled
                else ""
            )
        )
    lines.append(
        "figures: predicted/actual; targets: passes equal (within one when "
        "throttled), the same abort, bytes and total time within 15 %, downtime "
        "within 25 % or 5 ms"
    )
    return "\n".join(lines)


def main(
    *,
    policies: Sequence[str] = POLICIES,
    seeds: int = 5,
    budget: int = DEMO_BUDGET_BYTES,
    as_json: bool = False,
    out: IO[str],
) -> int:
    """Run the calibration and print it; returns 0 when every row meets its targets."""
    rows = calibrate(policies=policies, seeds=range(1, seeds + 1), budget=budget)
    if as_json:
        out.write(
            json.dumps(
                {
                    "memory_budget_bytes": budget,
                    "seeds": seeds,
                    "rows": [r.to_dict() for r in rows],
                }
            )
            + "\n"
        )
    else:
        out.write(table(rows, budget=budget) + "\n")
    return 0 if all(r.ok for r in rows) else 1
