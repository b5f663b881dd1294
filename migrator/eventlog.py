"""Hyper-V's event IDs for a move's events, as the VMMS-Admin log would write them.

Hyper-V's Virtual Machine Management Service logs live migrations in
``Microsoft-Windows-Hyper-V-VMMS-Admin``; operators filter that log by ID. A
move's journal event carries the ID Hyper-V would have written for it, where
one exists:

* **20415**, the live migration succeeded; its message gives the blackout in
  seconds. **20417**, it succeeded with an unexpectedly long blackout (above a
  threshold: hvweb's ``HVWEB_LONG_BLACKOUT_S``, 1 s by default). Both are read
  from ``Microsoft-Windows-Hyper-V-VMMS-Admin`` by ID to report blackout times:
  http://wiki.webperfect.ch/index.php?title=Blackout-Time_(VM_Live_Migration)
  (``Get-WinEvent -FilterHashtable @{LogName =
  'Microsoft-Windows-Hyper-V-VMMS-Admin'; ID = 20415,20417}``, with 20417
  flagged as the long one) and
  https://ramprasadtech.com/hyper-v-live-migration-terms-brownout-blackout-and-dirty-pages/
  ("Black out event -20415 (This is successful event id with blackout time)";
  that page reads it in the Hyper-V-Worker log). No page of Microsoft's own
  documentation listing these IDs turned up in the sources searched.
* **21502**, the live migration failed, with the cause:
  https://www.engineerdirect.co.uk/guides/library/d/virtualisation-storage/hyperv-live-migration-kerberos-delegation-failure/
  ("Event ID 21502 ... indicating Virtual Machine Migration Service ...
  failure"; that guide reads it in the Hyper-V-High-Availability log, where
  the cluster repeats it).
* **21501**, the simultaneous-migration limit was reached and the move
  queued. This ID comes from the project's recipes (``RECIPES.md``, "VMMS-Admin
  event IDs"); no public page in the sources searched confirmed it, so it is
  the one ID here taken on trust.

The messages adapt Hyper-V's wording (a VM's name in quotes, the blackout in
seconds) to what the console knows; levels are Event Viewer's. The module is
pure: the shell stores the ID with the event and builds the message when it
exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any

__all__ = [
    "LEVELS",
    "LOG",
    "SOURCE",
    "TITLES",
    "EventId",
    "event_id",
    "message",
]

#: The event log and the provider (Event Viewer's "Source") Hyper-V writes as.
LOG = "Microsoft-Windows-Hyper-V-VMMS-Admin"
SOURCE = "Hyper-V-VMMS"

#: The engine's and the journal's kinds this module reads (``migrator.events``
#: and ``hvweb.moves.lifecycle.Kind``).
_COMPLETED, _FAILED, _QUEUED = "completed", "failed", "queued"
_LIMIT = "HOST_MIGRATION_LIMIT"


class EventId(IntEnum):
    """The VMMS-Admin event IDs a move's events carry."""

    #: Live migration succeeded; the message gives the blackout.
    SUCCEEDED = 20415
    #: Live migration succeeded with an unexpectedly long blackout.
    LONG_BLACKOUT = 20417
    #: The simultaneous-migration limit was reached: the move waits.
    LIMIT_REACHED = 21501
    #: Live migration failed; the message gives the cause.
    FAILED = 21502


#: What each ID says, for choices and filters.
TITLES: dict[EventId, str] = {
    EventId.SUCCEEDED: "live migration succeeded",
    EventId.LONG_BLACKOUT: "succeeded with a long blackout",
    EventId.LIMIT_REACHED: "simultaneous-migration limit reached",
    EventId.FAILED: "live migration failed",
}

#: Event Viewer's level of each ID.
LEVELS: dict[EventId, str] = {
    EventId.SUCCEEDED: "Information",
    EventId.LONG_BLACKOUT: "Warning",
    EventId.LIMIT_REACHED: "Warning",
    EventId.FAILED: "Error",
}


def blackout_s(data: Mapping[str, Any]) -> float | None:
    """The blackout of a ``completed`` event's data, in seconds."""
    result = data.get("result") or {}
    value = result.get("downtime_s")
    return float(value) if value is not None else None


def event_id(
    kind: str, data: Mapping[str, Any], *, long_blackout_s: float
) -> EventId | None:
    """The ID Hyper-V would log for a move's event ``kind`` with ``data``.

    None for events Hyper-V logs no such line for (stages, passes, progress,
    a cancel). ``long_blackout_s`` is the threshold above which a success is
    20417 rather than 20415.
    """
    if long_blackout_s < 0:
        raise ValueError("long_blackout_s must be 0 or more")
    if kind == _COMPLETED:
        blackout = blackout_s(data)
        if blackout is not None and blackout > long_blackout_s:
            return EventId.LONG_BLACKOUT
        return EventId.SUCCEEDED
    if kind == _FAILED:
        return EventId.FAILED
    if kind == _QUEUED and _LIMIT in (data.get("waiting_for") or ()):
        return EventId.LIMIT_REACHED
    return None


def message(
    found: EventId,
    data: Mapping[str, Any],
    *,
    vm: str,
    source: str,
    destination: str,
) -> str:
    """The event's message, in Hyper-V's wording adapted to the console."""
    if found in (EventId.SUCCEEDED, EventId.LONG_BLACKOUT):
        blackout = blackout_s(data) or 0.0
        long = " an unexpectedly long" if found == EventId.LONG_BLACKOUT else " a"
        return (
            f"Virtual machine '{vm}' live migration from '{source}' to "
            f"'{destination}' succeeded with{long} blackout time of "
            f"{blackout:.3f} seconds."
        )
    if found == EventId.FAILED:
        cause = data.get("reason") or data.get("code") or "unknown cause"
        stage = data.get("stage")
        where = f" during {stage.replace('_', ' ')}" if stage else ""
        code = f" ({data['code']})" if data.get("code") else ""
        return (
            f"Live migration of '{vm}' from '{source}' to '{destination}' "
            f"failed{where}{code}: {cause}"
        )
    return (
        f"Live migration of '{vm}' from '{source}' to '{destination}' did not "
        "start: the simultaneous-migration limit was reached. "
        f"{data.get('reason') or ''}".rstrip()
    )
