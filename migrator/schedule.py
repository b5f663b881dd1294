"""Moves through the per-host limit of simultaneous migrations, on the clock.

A failover cluster lets each host take part in at most ``limit`` migrations at
once (source or destination); a move that would exceed it waits in a queue,
and each time a move ends the queue is walked oldest first, starting every
move whose two hosts have a free slot. :func:`schedule` runs that discipline
over predicted durations: it is what ``hvweb``'s dispatcher does
(``hvweb.moves.lifecycle.dispatch_queued``), replayed on simulated time. Pure:
no clock, no I/O.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .errors import SpecError
from .predict import Prediction
from .spec import MigrationSpec
from .transport import send_seconds

__all__ = ["Job", "Slotted", "move_seconds", "schedule"]


def move_seconds(spec: MigrationSpec, prediction: Prediction) -> float:
    """Simulated seconds of the whole move: stage 1 to the end of stage 7.

    The configuration over the link and the destination's creation, the
    predicted memory transfer and blackout, then the storage hand-off, online
    and network redirection (none after an abort: the VM stays put).
    """
    before = send_seconds(spec, spec.config_bytes) + spec.creation_s
    after = 0.0
    if not prediction.aborted:
        after = spec.storage_handoff_s + spec.online_s + spec.redirection_s
    return before + prediction.total_time_s + after


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One move to schedule: its hosts, its duration, and whether it already
    holds its slots at time 0 (``running``) or waits in the queue."""

    key: Hashable
    source: str
    destination: str
    seconds: float
    running: bool = False

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise SpecError("seconds", f"must be ≥ 0, got {self.seconds}")
        if self.source == self.destination:
            raise SpecError("destination", "must differ from the source")


@dataclass(frozen=True, slots=True, kw_only=True)
class Slotted:
    """When a job runs: ``start`` and ``end`` (seconds from time 0), whether it
    ``waited`` in the queue, and its ``slot`` on its source host (1 to the
    limit: which of the host's simultaneous migrations it is)."""

    key: Hashable
    start: float
    end: float
    waited: bool
    slot: int


def schedule(jobs: Sequence[Job], limit: int) -> list[Slotted]:
    """Each of ``jobs`` (in queue order) on the clock, at ``limit`` per host.

    Jobs marked ``running`` start at 0 (they hold their slots already, even
    beyond the limit); the others wait until a move ends and the walk of the
    queue finds both their hosts with a free slot. Ends at the same moment are
    taken one at a time, each followed by a walk of the queue, as the
    dispatcher runs once per move that ends. A job that could never start (no
    move ever ends to let it) is an error.
    """
    if limit < 1:
        raise SpecError("limit", f"must be ≥ 1, got {limit}")
    busy: dict[str, int] = defaultdict(int)
    lanes: dict[str, set[int]] = defaultdict(set)
    found: dict[Hashable, Slotted] = {}
    ends: list[tuple[float, int, Job, int]] = []
    order = {id(job): i for i, job in enumerate(jobs)}

    def begin(job: Job, at: float, waited: bool) -> None:
        busy[job.source] += 1
        busy[job.destination] += 1
        lane = next(n for n in range(1, len(lanes[job.source]) + 2)
                    if n not in lanes[job.source])  # fmt: skip
        lanes[job.source].add(lane)
        end = at + job.seconds
        found[job.key] = Slotted(
            key=job.key, start=at, end=end, waited=waited, slot=lane
        )
        heapq.heappush(ends, (end, order[id(job)], job, lane))

    def walk(at: float, queue: list[Job]) -> list[Job]:
        still = []
        for queued in queue:
            if busy[queued.source] < limit and busy[queued.destination] < limit:
                begin(queued, at, True)
            else:
                still.append(queued)
        return still

    for job in jobs:
        if job.running:
            begin(job, 0.0, False)
    # A queued job admitted when its hosts were full finds them full still;
    # one whose hosts freed since starts now, as the next dispatch would.
    waiting = walk(0.0, [job for job in jobs if not job.running])
    while ends:
        at, _, job, lane = heapq.heappop(ends)
        busy[job.source] -= 1
        busy[job.destination] -= 1
        lanes[job.source].discard(lane)
        waiting = walk(at, waiting)
    if waiting:
        raise SpecError("jobs", f"{len(waiting)} queued move(s) never find a free slot")
    return [found[job.key] for job in jobs]
