"""The decision after each pre-copy pass: stop, go on, throttle, or give up.

The engine and the predictor both step a :class:`Policy` after every pass, so
a prediction and the move it predicts follow the same rules. Policies
(:data:`~migrator.spec.POLICIES`):

``hyperv`` (the default)
    Hyper-V's: stop when the pages still dirty (``R``) could be sent within
    the downtime limit (``R·page_size/link_bps``; a limit of 0 disables the
    rule), or ``R`` is at most ``min_dirty_pages``, or the pass cap is
    reached; then switch over, whatever ``R`` is.
``throttle``
    QEMU's auto-converge: a pass is *unproductive* when the pages written
    again during it are at least 50 % of the pages it sent. From the second
    unproductive pass on, each unproductive pass raises the guest's throttle,
    20 % first and 10 % more each time, at most 99 %; a throttle of ``T`` %
    lets the guest issue ``100 − T`` % of its writes. Stops as ``hyperv``.
``escalate``
    oVirt's "Minimal downtime": a pass *stalls* when ``R`` after it is more
    than 95 % of ``R`` before it (the pages it sent). After the n-th stall the
    downtime limit is the n-th of 150, 200, 300, 400, 500 ms (never below the
    move's own limit; past the last step it stays there). Stops as ``hyperv``,
    except at the pass cap: there the move switches over only if ``R`` fits
    the limit in force, and otherwise aborts (``NOT_CONVERGING``): the VM
    keeps running on its source.
``suspend-if-needed``
    oVirt's "Suspend workload if needed": ``escalate`` with the throttle of
    ``throttle`` and a sixth step of 5,000 ms.

Sources: QEMU ``migration/options.c`` (the ``DEFAULT_MIGRATE_*`` throttle
constants: trigger threshold 50, initial 20, increment 10, maximum 99) and
oVirt ``packaging/dbscripts/upgrade/pre_upgrade/0000_config.sql``
(``MigrationPolicies``: ``setDowntime`` 150, 200, 300, 400 ms at stalls 1–4
and 500 ms at stall 6, then ``abort``; "Suspend workload if needed" adds
``setDowntime`` 5000 before ``abort``, with auto-convergence on). Where they
and issue 17 differ, the issue's rule is kept and the difference is noted at
the constant.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import MigrationSpec

__all__ = [
    "ABORT",
    "GO_ON",
    "NOT_CONVERGING",
    "STOP",
    "STOP_REASONS",
    "Decision",
    "Policy",
    "stop_reason",
]

#: Why pre-copy stopped, in the order the rules are checked.
STOP_REASONS: tuple[str, ...] = ("downtime", "threshold", "pass_cap")
#: The failure code of a move its policy gave up on.
NOT_CONVERGING = "NOT_CONVERGING"
#: A decision's actions.
GO_ON, STOP, ABORT = "go_on", "stop", "abort"

#: QEMU's throttle-trigger-threshold: a pass is unproductive when the pages
#: written again during it reach this share of the pages it sent (QEMU compares
#: bytes and needs "more than"; issue 17 says "at least").
UNPRODUCTIVE_SHARE = 0.50
#: QEMU's cpu-throttle-initial, cpu-throttle-increment and max-cpu-throttle.
#: QEMU starts throttling at its second unproductive period and then clears its
#: count, so it raises the throttle every second one; issue 17 raises it at
#: every unproductive pass from the second on, as here.
THROTTLE_INITIAL_PCT = 20.0
THROTTLE_INCREMENT_PCT = 10.0
THROTTLE_MAX_PCT = 99.0
#: A pass stalls when R after it exceeds this share of R before it.
STALL_SHARE = 0.95
#: oVirt's downtime steps after the 1st, 2nd, ... stall. oVirt sets 500 ms at
#: the 6th stall (none at the 5th) and starts every move at 100 ms; issue 17
#: takes the steps in order and keeps the move's own limit as the floor.
ESCALATE_STEPS_S: tuple[float, ...] = (0.150, 0.200, 0.300, 0.400, 0.500)
SUSPEND_STEPS_S: tuple[float, ...] = (*ESCALATE_STEPS_S, 5.000)

_THROTTLES = frozenset({"throttle", "suspend-if-needed"})
_STEPS = {"escalate": ESCALATE_STEPS_S, "suspend-if-needed": SUSPEND_STEPS_S}


def stop_reason(
    spec: MigrationSpec,
    *,
    passes: int,
    remaining_pages: float,
    downtime_limit_s: float | None = None,
) -> str | None:
    """The rule that ends pre-copy after ``passes`` passes, or ``None`` to go on.

    With ``R`` pages dirty: ``R·page_size/link_bps`` within the downtime limit
    (``downtime_limit_s``, by default the spec's; 0 disables it), ``R`` at
    most ``min_dirty_pages``, or the pass cap reached.
    """
    limit = spec.downtime_limit_s if downtime_limit_s is None else downtime_limit_s
    if limit > 0 and _fits(spec, remaining_pages, limit):
        return "downtime"
    if remaining_pages <= spec.min_dirty_pages:
        return "threshold"
    if passes >= spec.pass_cap:
        return "pass_cap"
    return None


def _fits(spec: MigrationSpec, pages: float, limit: float) -> bool:
    return pages * spec.page_size * 8 / spec.link_bps <= limit


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What a policy decided after a pass.

    ``action`` is :data:`GO_ON`, :data:`STOP` (switch over; ``stop_reason``
    says why) or :data:`ABORT` (give up, the VM stays on its source).
    ``throttle_pct`` is the throttle the next pass runs with;
    ``downtime_limit_s`` the limit this decision was taken against.
    """

    action: str
    stop_reason: str | None
    throttle_pct: float
    downtime_limit_s: float


class Policy:
    """One move's convergence policy: call :meth:`after_pass` after every pass."""

    __slots__ = (
        "downtime_limit_s",
        "name",
        "spec",
        "stalls",
        "throttle_pct",
        "unproductive",
    )

    def __init__(self, spec: MigrationSpec, name: str | None = None) -> None:
        self.spec = spec
        self.name = name or spec.policy
        #: The guest's throttle now (%), and the downtime limit in force (s).
        self.throttle_pct = 0.0
        self.downtime_limit_s = spec.downtime_limit_s
        self.unproductive = 0
        self.stalls = 0

    def after_pass(
        self, *, pass_no: int, pages_sent: float, remaining: float
    ) -> Decision:
        """Decide after pass ``pass_no``, which sent ``pages_sent`` pages (the
        dirty set at its start) and left ``remaining`` dirty."""
        spec = self.spec
        if self.name in _THROTTLES and remaining >= UNPRODUCTIVE_SHARE * pages_sent:
            self.unproductive += 1
            if self.unproductive >= 2:
                self.throttle_pct = (
                    THROTTLE_INITIAL_PCT
                    if self.throttle_pct == 0
                    else min(
                        THROTTLE_MAX_PCT, self.throttle_pct + THROTTLE_INCREMENT_PCT
                    )
                )
        steps = _STEPS.get(self.name, ())
        if steps and remaining > STALL_SHARE * pages_sent:
            self.stalls += 1
            step = steps[min(self.stalls, len(steps)) - 1]
            self.downtime_limit_s = max(spec.downtime_limit_s, step)
        limit = self.downtime_limit_s
        reason = stop_reason(
            spec,
            passes=pass_no,
            remaining_pages=round(remaining),
            downtime_limit_s=limit,
        )
        if reason == "pass_cap" and steps:
            action = ABORT  # R does not fit the limit in force: give up
        elif reason is not None:
            action = STOP
        else:
            action = GO_ON
        return Decision(
            action=action,
            stop_reason=reason,
            throttle_pct=self.throttle_pct,
            downtime_limit_s=limit,
        )

    def abort_reason(self, remaining: float) -> str:
        """Why the move gave up, for its failure message."""
        spec = self.spec
        need = remaining * spec.page_size * 8 / spec.link_bps
        return (
            f"pre-copy did not converge: after {spec.pass_cap} passes "
            f"{round(remaining):,} pages are dirty, about {need * 1e3:,.0f} ms of "
            f"blackout against the {self.downtime_limit_s * 1e3:,.0f} ms limit in "
            f"force; the {self.name} policy aborts rather than pause the guest "
            "that long, and the VM keeps running on its source"
        )
