"""The pre-copy model: what a migration should do, before and while it runs.

The model follows the engine pass by pass, with the engine's own cost rules
(:mod:`migrator.transport`) and stop rules (:mod:`migrator.policy`):

* Pass 1 sends every page; zero pages go as markers, unless the guest wrote
  them before the pass reached them. Later passes send the pages dirty at
  their start: deltas under Compression, paced by the link or the encoder.
* A working set of ``W`` pages taking ``w`` writes/s at random (``uniform``;
  ``hotcold`` is two such sets) leaves a page dirty at the end of a pass of
  ``T`` seconds with probability ``1 - exp(-w·T/W)`` if the pass did not send
  it, and ``1 - (1 - exp(-λT)) / (λT)`` (``λ = w/W``) if it did, at a
  uniformly spread moment of the pass.
* A sweep is a walker going round its region while the pass's cursor goes
  through memory in address order: the model follows both on the region, cut
  into cells, and marks a cell dirty when the walker passed it after the
  cursor did. Where the region lies in memory is not known before the move
  (the seed places it), so pass 1 is averaged over every placement.

:func:`predict` runs the model from the start; :func:`outlook` continues it
from what a running move has done so far.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from .errors import SpecError
from .policy import ABORT, GO_ON, NOT_CONVERGING, STOP_REASONS, Policy
from .spec import MigrationSpec
from .transport import blackout_seconds, delta_bytes, page_seconds
from .units import format_about

if TYPE_CHECKING:  # events import results, which import this module
    from .events import PassFinished, Progress

__all__ = [
    "Outlook",
    "Prediction",
    "outlook",
    "outlook_at",
    "forget_first_passes",
    "predict",
    "predict_policies",
]

#: Cells a sweep's region is cut into (fewer if the region is smaller).
_CELLS = 512
#: Pass 1 of recent specs: the same for every policy (see :func:`predict_policies`).
_FIRST: dict[tuple[Any, ...], _Pass] = {}
_FIRST_KEPT = 64
#: Batches a pass of a writing guest is cut into (``transfer._BATCHES_PER_PASS``):
#: a batch is read at its start, so its pages are sent half a batch early.
_BATCHES_PER_PASS = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """The model's figures for one migration (rates in pages per second).

    Per-pass tuples have one entry per pre-copy pass; ``seconds_per_pass`` is
    simulated seconds, ``bytes_per_pass`` the link bytes of each pass. The
    policy's fields mean what they mean in
    :class:`~migrator.result.MigrationResult`; an ``aborted`` move has no
    blackout (``downtime_s`` 0) and its ``total_time_s`` is its pre-copy's.
    """

    passes: int
    stop_reason: str
    pages_per_pass: tuple[int, ...]
    final_dirty_pages: int
    bytes_sent: int
    total_time_s: float
    downtime_s: float
    converges: bool
    reason: str
    dirty_rate: float
    link_rate: float
    performance_option: str = "tcpip"
    bytes_per_pass: tuple[int, ...] = ()
    seconds_per_pass: tuple[float, ...] = ()
    policy: str = "hyperv"
    throttle_pct_per_pass: tuple[float, ...] = ()
    downtime_limit_ms_per_pass: tuple[float, ...] = ()
    guest_slowdown_pct: float = 0.0
    aborted: bool = False
    move_kind: str = "live"

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise SpecError("stop_reason", f"unknown stop reason {self.stop_reason!r}")
        if self.passes != len(self.pages_per_pass) or self.passes < 1:
            raise SpecError("passes", "must equal the length of pages_per_pass")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, tuples as lists."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        """Inverse of :meth:`to_dict` (older dicts lack the later fields)."""
        values = dict(data)
        for name, value in values.items():
            if isinstance(value, list):
                values[name] = tuple(value)
        return cls(**values)


def _share(below: float, span: float) -> float:
    """The chance that a start uniform in ``[0, span]`` is below ``below``."""
    if span <= 0:
        return 1.0 if below > 0 else 0.0
    return min(1.0, max(0.0, below / span))


@dataclass(slots=True)
class _Pass:
    """The model's account of one pass: what it sent and what it left dirty."""

    pages: float
    payload: float  # link bytes
    seconds: float
    dirty: list[float]  # per Poisson class, or per cell of a sweep's region
    walker: float = 0.0  # a sweep's walker offset at the pass's end


@dataclass(slots=True)
class _Model:
    """The model of one spec: its working set and the cost of a page."""

    spec: MigrationSpec
    classes: list[tuple[float, float]] = field(default_factory=list)
    region: float = 0.0  # a sweep's region, pages
    speed: float = 0.0  # a sweep's walker, pages/s
    first_page_s: float = 0.0
    resent_page_s: float = 0.0
    delta: float = 0.0
    memo: dict[tuple[int, float], tuple[_Pass, _Pass]] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: MigrationSpec) -> _Model:
        model = cls(spec)
        wl = spec.moving_workload
        model.first_page_s = page_seconds(spec, resent=False)
        model.resent_page_s = page_seconds(spec, resent=True)
        model.delta = delta_bytes(spec)
        if not wl.writes:
            return model
        size = wl.working_set_pages
        if wl.kind == "sweep":
            model.region = float(size)
            model.speed = wl.write_rate
        elif wl.kind == "hotcold":
            hot = min(size, max(1, round(wl.hot_fraction * size)))
            if hot == size:
                model.classes = [(size, wl.write_rate)]
            else:
                model.classes = [
                    (hot, wl.write_rate * wl.hot_write_share),
                    (size - hot, wl.write_rate * (1 - wl.hot_write_share)),
                ]
        else:
            model.classes = [(float(size), wl.write_rate)]
        return model

    @property
    def sweeps(self) -> bool:
        return self.region > 0

    @property
    def cells(self) -> int:
        return max(1, min(_CELLS, int(self.region)))

    # -- pass 1 ------------------------------------------------------------

    def first_pass(self) -> _Pass:
        """Every page once; zero pages the guest wrote first carry payload."""
        spec = self.spec
        key = (spec.pages, spec.zero_pages, spec.page_size, spec.moving_workload,
               self.first_page_s)  # fmt: skip
        if key not in _FIRST:
            if len(_FIRST) >= _FIRST_KEPT:
                _FIRST.clear()
            _FIRST[key] = self._first_pass()
        return _FIRST[key]

    def _first_pass(self) -> _Pass:
        spec = self.spec
        pages = float(spec.pages)
        zero = spec.zero_pages / spec.pages if spec.pages else 0.0
        base = pages - spec.zero_pages
        if self.sweeps:
            return self._first_sweep(pages, zero, base)
        extra = 0.0
        dirty: list[float] = []
        for _ in range(4):  # the pass's length and its extra payload agree
            seconds = (base + extra) * self.first_page_s
            extra = 0.0
            dirty = []
            for size, rate in self.classes:
                x = rate * seconds / size
                after = 1 - -math.expm1(-x) / x if x > 0 else 0.0
                extra += zero * size * after
                dirty.append(size * after)
        payload = base + extra
        return _Pass(
            pages, payload * spec.page_size, payload * self.first_page_s, dirty
        )

    def _first_sweep(self, pages: float, zero: float, base: float) -> _Pass:
        """Pass 1 of a sweep, averaged over where its region lies in memory.

        The region starts anywhere in ``[0, pages − region]`` with equal
        chance; the cursor reaches a cell ``(start + y)·tp`` seconds into the
        pass, the walker first passes it at ``y/v`` and then once a lap. So
        the chance that the walker wrote a cell's zero pages before they were
        sent, and that it passed the cell again after, are shares of that
        range, found cell by cell without trying placements.
        """
        k = self.cells
        q = self.region / k
        v = self.speed
        lap = self.region / v
        tp = self.first_page_s * (1 - zero)  # cursor seconds per page of memory
        span = max(0.0, pages - self.region)
        seconds = base * self.first_page_s
        dirty = [0.0] * k
        extra = 0.0
        for _ in range(2):  # the pass's length and its extra payload agree
            lag = seconds / _BATCHES_PER_PASS / 2
            dirty = []
            extra = 0.0
            for j in range(k):
                y = (j + 0.5) * q
                first = y / v
                # sent = (start + y)·tp − lag; the region starts at ``start``.
                # Written first: first < sent, i.e. start above this.
                extra += zero * q * (1 - _share((first + lag) / tp - y, span))
                if seconds < first:
                    dirty.append(0.0)
                    continue
                last = first + math.floor((seconds - first) / lap) * lap
                # Written again: last > sent, i.e. start below this.
                dirty.append(_share((last + lag) / tp - y, span))
            seconds = (base + extra) * self.first_page_s
        walker = (v * seconds) % self.region
        payload = (base + extra) * self.spec.page_size
        return _Pass(pages, payload, seconds, dirty, walker)

    # -- later passes --------------------------------------------------------

    def next_pass(self, before: _Pass, *, slowdown: float = 0.0) -> _Pass:
        """Send the pages ``before`` left dirty; the guest writes ``1 - slowdown``."""
        key = (id(before), slowdown)
        if key not in self.memo:  # policies share a course until they differ
            self.memo[key] = (before, self._next_pass(before, slowdown))
        return self.memo[key][1]

    def _next_pass(self, before: _Pass, slowdown: float) -> _Pass:
        pages = self.dirty_pages(before)
        seconds = pages * self.resent_page_s
        payload = pages * self.delta
        keep = 1.0 - slowdown
        if self.sweeps:
            return self._next_sweep(before, pages, payload, seconds, keep)
        dirty = []
        for (size, rate), in_set in zip(self.classes, before.dirty, strict=True):
            x = rate * keep * seconds / size
            if x <= 0:
                dirty.append(0.0)
                continue
            touched = -math.expm1(-x)
            dirty.append(in_set * (1 - touched / x) + (size - in_set) * touched)
        return _Pass(pages, payload, seconds, dirty)

    def _next_sweep(
        self, before: _Pass, pages: float, payload: float, seconds: float, keep: float
    ) -> _Pass:
        k = self.cells
        q = self.region / k
        v = self.speed * keep
        s = self.region
        w0 = before.walker
        lag = seconds / _BATCHES_PER_PASS / 2
        dirty = []
        sent_before = 0.0
        for j, f in enumerate(before.dirty):
            y = (j + 0.5) * q
            sent = (sent_before + f * q / 2) * self.resent_page_s - lag
            sent_before += f * q
            if v <= 0:
                dirty.append(0.0)
                continue
            first = ((y - w0) % s) / v
            if first > seconds:
                dirty.append(0.0)
                continue
            lap = s / v
            last = first + math.floor((seconds - first) / lap) * lap
            dirty.append(f * (1.0 if last > sent else 0.0) + (1 - f))
        walker = (w0 + v * seconds) % s
        return _Pass(pages, payload, seconds, dirty, walker)

    def dirty_pages(self, account: _Pass) -> float:
        """Pages a pass left dirty."""
        if self.sweeps:
            return sum(account.dirty) * self.region / self.cells
        return sum(account.dirty)

    def rescaled(self, account: _Pass, pages: float) -> _Pass:
        """The same pass, leaving ``pages`` dirty (an observed count)."""
        expected = self.dirty_pages(account)
        ratio = pages / expected if expected > 0 else 0.0
        if self.sweeps:
            dirty = [min(1.0, d * ratio) for d in account.dirty]
        else:
            dirty = [d * ratio for d in account.dirty]
        return _Pass(account.pages, account.payload, account.seconds, dirty,
                     account.walker)  # fmt: skip


@dataclass(slots=True)
class _Run:
    """The passes the model runs through, the policy's course, and its end."""

    passes: list[_Pass]
    stop: str
    final: float
    aborted: bool
    throttles: list[float]  # during each pass, %
    limits: list[float]  # each decision's downtime limit, s
    limit: float  # the limit in force at the end

    @property
    def slowdown_pct(self) -> float:
        seconds = sum(p.seconds for p in self.passes)
        held = sum(
            t * p.seconds for t, p in zip(self.throttles, self.passes, strict=True)
        )
        return held / seconds if seconds > 0 else 0.0


def _run(
    model: _Model, passes: list[_Pass], *, at_least: int = 1, policy_name: str = ""
) -> _Run:
    """Step the policy over ``passes`` (at least one) and go on until it ends.

    The policy's decisions before pass ``at_least`` are not taken (a running
    move went on past them); later passes run with the throttle in force.
    ``policy_name`` overrides the spec's policy.
    """
    policy = Policy(model.spec, policy_name or None)
    throttles: list[float] = []
    limits: list[float] = []
    i = 0
    while True:
        if i == len(passes):
            passes.append(
                model.next_pass(passes[-1], slowdown=policy.throttle_pct / 100)
            )
        account = passes[i]
        throttles.append(policy.throttle_pct)
        left = model.dirty_pages(account)
        decision = policy.after_pass(
            pass_no=i + 1, pages_sent=account.pages, remaining=left
        )
        limits.append(decision.downtime_limit_s)
        i += 1
        if decision.action != GO_ON and i >= at_least:
            assert decision.stop_reason is not None
            return _Run(
                passes=passes[:i],
                stop=decision.stop_reason,
                final=left,
                aborted=decision.action == ABORT,
                throttles=throttles,
                limits=limits,
                limit=policy.downtime_limit_s,
            )


def _limit_words(limit: float, downtime: float) -> str:
    if limit <= 0:
        return f"downtime about {format_about(downtime)}"
    where = "within" if downtime <= limit else "over"
    return (
        f"downtime about {format_about(downtime)}, "
        f"{where} the {format_about(limit)} limit"
    )


def _reason(spec: MigrationSpec, run: _Run, downtime: float) -> str:
    n = len(run.passes)
    if spec.quick:
        return (
            "quick migration: the VM is saved, its memory copied in one pass and "
            f"resumed on the destination; downtime about {format_about(downtime)} "
            "(the whole memory transfer)"
        )
    slowed = run.slowdown_pct
    slow = f"; the guest slowed by {slowed:.0f} %" if slowed >= 0.5 else ""
    if run.stop != "pass_cap":
        return (
            f"converges in {n} pass{'es' if n > 1 else ''}; "
            + _limit_words(run.limit, downtime)
            + slow
        )
    link = spec.link_bps / 8 / spec.page_size
    why = (
        f"will not converge: the guest writes {spec.workload.write_rate:,.0f} "
        f"pages/s and the link drains {link:,.0f} pages/s; "
    )
    if run.aborted:
        need = run.final * spec.page_size * 8 / spec.link_bps
        return (
            why + f"the {spec.policy} policy aborts at the pass cap of "
            f"{spec.pass_cap} ({NOT_CONVERGING}): about {round(run.final):,} pages "
            f"dirty need {format_about(need)}, over the "
            f"{format_about(run.limit)} limit, and the VM stays on its source" + slow
        )
    return (
        why + f"pre-copy stops at the pass cap of {spec.pass_cap} with about "
        f"{round(run.final):,} pages dirty; " + _limit_words(run.limit, downtime) + slow
    )


def _prediction(model: _Model, run: _Run, policy: str) -> Prediction:
    spec = replace(model.spec, policy=policy)
    ps = spec.page_size
    final = run.final
    # An aborted move never pauses its guest: no blackout, no state.
    downtime = 0.0 if run.aborted else blackout_seconds(spec, final)
    last = run.passes[-1]
    dirty_rate = final / last.seconds if last.seconds > 0 else 0.0
    payload = sum(p.payload for p in run.passes)
    if not run.aborted:
        payload += final * model.delta + spec.state_size
    moving = sum(p.seconds for p in run.passes)
    if spec.quick:  # the guest is saved for the whole transfer
        downtime += moving
        moving = 0.0
    return Prediction(
        passes=len(run.passes),
        stop_reason=run.stop,
        pages_per_pass=tuple(round(p.pages) for p in run.passes),
        final_dirty_pages=round(final),
        bytes_sent=round(payload),
        total_time_s=moving + downtime,
        downtime_s=downtime,
        converges=run.stop != "pass_cap",
        reason=_reason(spec, run, downtime),
        dirty_rate=dirty_rate,
        link_rate=spec.link_bps / 8 / ps,
        performance_option=spec.performance_option,
        bytes_per_pass=tuple(round(p.payload) for p in run.passes),
        seconds_per_pass=tuple(p.seconds for p in run.passes),
        policy=spec.policy,
        throttle_pct_per_pass=tuple(run.throttles),
        downtime_limit_ms_per_pass=tuple(x * 1e3 for x in run.limits),
        guest_slowdown_pct=run.slowdown_pct,
        aborted=run.aborted,
        move_kind=spec.move_kind,
    )


def forget_first_passes() -> None:
    """Empty the cache of first passes (benchmarks time the model from cold)."""
    _FIRST.clear()


def predict(spec: MigrationSpec) -> Prediction:
    """Expected passes, bytes, total time and downtime of ``spec``'s migration."""
    return predict_policies(spec, (spec.policy,))[0]


def predict_policies(spec: MigrationSpec, policies: Sequence[str]) -> list[Prediction]:
    """:func:`predict` for ``spec`` under each of ``policies``, sharing the work."""
    model = _Model.of(spec)
    first = model.first_pass()
    return [
        _prediction(model, _run(model, [first], policy_name=name), name)
        for name in policies
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outlook:
    """Where a running move is heading, from what it has done so far.

    ``blackout_if_stopped_s``: the blackout if pre-copy stopped now; ``eta_s``:
    simulated seconds until the VM runs on the destination with its network
    redirected (or, when ``aborts``, until its policy gives up and it runs on
    where it was); ``downtime_s`` and ``passes``: the expected blackout at the
    switchover and the expected passes in all; ``text``: the same in an
    operator's words.
    """

    text: str
    converges: bool
    aborts: bool
    passes: int
    downtime_s: float
    blackout_if_stopped_s: float
    eta_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def outlook(
    spec: MigrationSpec,
    *,
    passes_done: int,
    dirty_pages: float,
    unsent_pages: float = 0.0,
) -> Outlook:
    """The outlook of a running move of ``spec``, by the model of :func:`predict`.

    ``passes_done`` passes have finished; ``dirty_pages`` are dirty now
    (:class:`~migrator.events.Progress`'s ``remaining_dirty_pages``, or a
    :class:`~migrator.events.PassFinished`'s), of which ``unsent_pages``
    belong to the pass under way and have not been sent yet. The model's own
    course is followed, with its dirty set set to what was observed.
    """
    if passes_done < 0:
        raise SpecError("passes_done", f"must be ≥ 0, got {passes_done}")
    if not 0 <= unsent_pages <= dirty_pages:
        raise SpecError("unsent_pages", "must be in [0, dirty_pages]")
    model = _Model.of(spec)
    course = _run(model, [model.first_pass()], at_least=passes_done + 1).passes
    resent = dirty_pages - unsent_pages
    if passes_done == 0:
        # Inside pass 1: its unsent pages go plain, zero ones as markers.
        fresh = unsent_pages * (1 - spec.zero_pages / spec.pages)
        stopped = blackout_seconds(spec, resent, fresh)
        rest = fresh * model.first_page_s
    else:
        stopped = blackout_seconds(spec, dirty_pages)
        rest = unsent_pages * model.resent_page_s
    if unsent_pages == 0 and passes_done >= 1:
        # Between passes: the observed dirty set replaces the model's.
        done = course[:passes_done]
        done[-1] = model.rescaled(done[-1], dirty_pages)
        run = _run(model, done, at_least=passes_done)
    else:
        # Inside a pass: it ends as the model's does.
        passes_done += 1
        run = _run(model, course[:passes_done], at_least=passes_done)
    ahead = rest + sum(p.seconds for p in run.passes[passes_done:])
    downtime = 0.0 if run.aborted else blackout_seconds(spec, run.final)
    # Stages 5–7 follow a switchover; an abort ends where pre-copy does.
    after = spec.storage_handoff_s + spec.online_s + spec.redirection_s
    if run.aborted:
        after = 0.0
    return Outlook(
        text=_reason(spec, run, downtime),
        converges=run.stop != "pass_cap",
        aborts=run.aborted,
        passes=len(run.passes),
        downtime_s=downtime,
        blackout_if_stopped_s=stopped,
        eta_s=ahead + downtime + after,
    )


def outlook_at(spec: MigrationSpec, event: PassFinished | Progress) -> Outlook:
    """:func:`outlook` from the last pass-finished or progress event of a move."""
    if event.kind == "pass_finished":
        return outlook(
            spec, passes_done=event.pass_no, dirty_pages=event.remaining_dirty_pages
        )
    unsent = getattr(event, "unsent_pages", 0)
    return outlook(
        spec,
        passes_done=event.pass_no - 1,
        dirty_pages=event.remaining_dirty_pages,
        unsent_pages=min(unsent, event.remaining_dirty_pages),
    )
