"""hvweb's simulated hypervisor: the page engine and the live-migration rules.

Standard library only: nothing here may import Django, numpy or any part of
``hvweb``. The web shell turns its rows into this package's plain snapshots.

The engine's public names, for the shell::

    spec = MigrationSpec(memory_bytes=parse_size("1GiB"), workload=WorkloadSpec(...))
    engine = Engine(spec, faults=Faults(...), cancel=token)
    for event in engine.events():   # StageStarted, PassFinished, Progress, ...
        persist(event.to_dict())
    engine.result                   # MigrationResult, also in Completed.result
    predict(spec)                   # the model's Prediction, before the move
    outlook_at(spec, event)         # the model's Outlook from a running move
    advise(spec)                    # every option under every policy, ranked
"""

from __future__ import annotations

from .advise import Advice, Choice, advise
from .engine import CancelToken, Engine, migrate, run
from .errors import EventError, MigratorError, ParseError, SpecError
from .events import (
    EVENT_TYPES,
    Cancelled,
    Completed,
    Event,
    Failed,
    PassFinished,
    Progress,
    StageFinished,
    StageStarted,
    event_from_dict,
)
from .pacing import paced
from .policy import NOT_CONVERGING, STOP_REASONS
from .predict import Outlook, Prediction, outlook, outlook_at, predict
from .result import OUTCOMES, MigrationResult
from .schedule import Job, Slotted, move_seconds, schedule
from .spec import (
    OPTION_LABELS,
    PERFORMANCE_OPTIONS,
    POLICIES,
    WORKLOAD_KINDS,
    Faults,
    MigrationSpec,
    WorkloadSpec,
)
from .stages import STAGE_LABELS, Stage
from .units import (
    format_duration,
    format_rate,
    format_size,
    format_span,
    parse_count,
    parse_duration,
    parse_rate,
    parse_size,
)

__all__ = [
    "EVENT_TYPES",
    "NOT_CONVERGING",
    "OPTION_LABELS",
    "OUTCOMES",
    "PERFORMANCE_OPTIONS",
    "POLICIES",
    "STAGE_LABELS",
    "STOP_REASONS",
    "WORKLOAD_KINDS",
    "Advice",
    "CancelToken",
    "Choice",
    "Cancelled",
    "Completed",
    "Engine",
    "Event",
    "EventError",
    "Failed",
    "Faults",
    "Job",
    "MigrationResult",
    "MigrationSpec",
    "MigratorError",
    "Outlook",
    "ParseError",
    "PassFinished",
    "Prediction",
    "Progress",
    "Slotted",
    "SpecError",
    "Stage",
    "StageFinished",
    "StageStarted",
    "WorkloadSpec",
    "advise",
    "event_from_dict",
    "format_duration",
    "format_rate",
    "format_size",
    "format_span",
    "migrate",
    "move_seconds",
    "outlook",
    "outlook_at",
    "paced",
    "parse_count",
    "parse_duration",
    "parse_rate",
    "parse_size",
    "predict",
    "run",
    "schedule",
]
