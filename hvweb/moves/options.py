"""A move's options, checked once for every way in (pages, API, CLI, drain).

:class:`MoveOptions` is the one validator: its bounds and its messages. The
API's serializers only state the JSON types and show these bounds in the
schema; the pages' inputs take their ``min``/``max`` from here too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from hvweb.inventory.choices import MigrationPolicy, PerformanceOption
from migrator.errors import SpecError
from migrator.spec import Faults, MigrationSpec

if TYPE_CHECKING:
    from hvweb.inventory.models import Cluster

__all__ = [
    "DEFAULT_DOWNTIME_LIMIT_MS",
    "FAULT_BOUNDS",
    "MAX_DOWNTIME_LIMIT_MS",
    "MAX_SPEED",
    "MIN_SPEED",
    "MoveOptions",
]

#: The engine's default downtime limit (``MigrationSpec.downtime_limit_s``,
#: QEMU's 300 ms), in the milliseconds a move stores.
DEFAULT_DOWNTIME_LIMIT_MS = round(
    {f.name: f.default for f in dataclasses.fields(MigrationSpec)}["downtime_limit_s"]
    * 1000
)
MAX_DOWNTIME_LIMIT_MS = 60_000
#: Simulated seconds per wall second: 0 runs unpaced, else within these.
MIN_SPEED = 0.0001
MAX_SPEED = 1000.0
#: The faults a drill may inject, with the values each accepts.
FAULT_BOUNDS: dict[str, tuple[int, int]] = {
    "link_failure_pass": (1, 1000),
    "link_failure_byte": (0, 2**62),
    "corrupt_page": (0, 2**40),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveOptions:
    """A move's options, checked where they enter (field-keyed errors)."""

    performance_option: str
    downtime_limit_ms: int
    speed: float
    faults: Mapping[str, Any]
    policy: str = MigrationPolicy.HYPERV.value

    @classmethod
    def parse(
        cls,
        cluster: Cluster,
        *,
        performance_option: str | None = None,
        downtime_limit_ms: Any = None,
        speed: Any = None,
        faults: Mapping[str, Any] | None = None,
        policy: str | None = None,
    ) -> MoveOptions:
        """Options with the cluster's defaults; ValidationError names bad fields.

        Values may be JSON's types or a form's strings.
        """
        errors: dict[str, str] = {}
        option = performance_option or cluster.performance_option
        if option not in PerformanceOption.values:
            errors["performance_option"] = (
                f"{option!r} is not a performance option; choose one of "
                f"{', '.join(PerformanceOption.values)}."
            )
        chosen = policy or cluster.default_policy
        if chosen not in MigrationPolicy.values:
            errors["policy"] = (
                f"{chosen!r} is not a convergence policy; choose one of "
                f"{', '.join(MigrationPolicy.values)}."
            )
        limit = downtime_limit_ms
        if limit is None:
            limit = DEFAULT_DOWNTIME_LIMIT_MS
        if isinstance(limit, bool) or not isinstance(limit, int):
            try:
                limit = int(str(limit))
            except ValueError:
                limit = -1
        if not 0 <= limit <= MAX_DOWNTIME_LIMIT_MS:
            errors["downtime_limit_ms"] = (
                f"must be a whole number of milliseconds from 0 (no limit) to "
                f"{MAX_DOWNTIME_LIMIT_MS}."
            )
        pace = cluster.simulation_speed if speed is None else speed
        try:
            pace = float(pace)
        except (TypeError, ValueError):
            pace = math.nan
        if not (pace == 0 or MIN_SPEED <= pace <= MAX_SPEED):
            errors["speed"] = (
                f"must be 0 (unpaced) or a factor from {MIN_SPEED:g} to "
                f"{MAX_SPEED:g} (simulated seconds per wall second)."
            )
        fault_fields = dict(faults or {})
        problem = _fault_problem(fault_fields)
        if problem:
            errors["faults"] = problem
        if errors:
            raise ValidationError(errors)
        return cls(
            performance_option=option,
            downtime_limit_ms=limit,
            speed=pace,
            faults=fault_fields,
            policy=chosen,
        )


def _fault_problem(faults: dict[str, Any]) -> str | None:
    """What is wrong with the injected faults (the engine's rules, then ours)."""
    try:
        Faults(**faults)
    except SpecError as exc:
        return str(exc)
    except TypeError as exc:
        return f"unknown fault: {exc}"
    for name, (low, high) in FAULT_BOUNDS.items():
        value = faults.get(name)
        if value is not None and not low <= value <= high:
            return f"{name}: must be from {low} to {high}, got {value}"
    return None
