"""Advice for one VM: every policy under every performance option, ranked.

For a VM's workload and link (a spec), :func:`advise` runs the predictor for
each performance option (TCP/IP, Compression, SMB) under each policy and
recommends one choice, with the reason in a sentence an operator reads:
"Compression with hyperv: converges in 4 passes, 71 ms downtime, no slowdown".

The ranking, first difference wins: a move that switches over beats one that
aborts; a blackout within the move's own downtime limit beats one over it;
less guest slowdown, then less downtime (to the millisecond), then less total
time; then Hyper-V's order of preference (Compression, its default, then SMB,
then TCP/IP) and the policies in their order (``hyperv`` first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .predict import Prediction, predict_policies
from .spec import OPTION_LABELS, PERFORMANCE_OPTIONS, POLICIES, MigrationSpec
from .units import format_about

__all__ = ["Advice", "Choice", "advise"]

#: Hyper-V's performance options in the order advice prefers them on a tie.
_PREFERENCE: tuple[str, ...] = ("compression", "smb", "tcpip")


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """One performance option under one policy, as the model sees it."""

    performance_option: str
    policy: str
    prediction: Prediction

    @property
    def label(self) -> str:
        """``Compression with hyperv``."""
        return f"{OPTION_LABELS[self.performance_option]} with {self.policy}"

    @property
    def outcome(self) -> str:
        """``converges``, ``switches over`` (at the pass cap) or ``aborts``."""
        p = self.prediction
        if p.aborted:
            return "aborts"
        return "converges" if p.converges else "switches over"

    def summary(self) -> str:
        """The choice in one line: outcome, passes, downtime, slowdown."""
        p = self.prediction
        n = f"{p.passes} pass{'es' if p.passes > 1 else ''}"
        if p.aborted:
            return f"{self.label}: aborts after {n}, the VM stays on its source"
        slow = (
            "no slowdown"
            if p.guest_slowdown_pct < 0.5
            else f"guest slowed {p.guest_slowdown_pct:.0f} %"
        )
        verb = "converges in" if p.converges else "switches over after"
        return (
            f"{self.label}: {verb} {n}, {format_about(p.downtime_s)} downtime, {slow}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready row: the figures advice tables show."""
        p = self.prediction
        return {
            "performance_option": self.performance_option,
            "policy": self.policy,
            "outcome": self.outcome,
            "passes": p.passes,
            "total_time_s": p.total_time_s,
            "downtime_s": p.downtime_s,
            "guest_slowdown_pct": p.guest_slowdown_pct,
            "converges": p.converges,
            "aborted": p.aborted,
            "summary": self.summary(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Advice:
    """Every choice, in the order tried, and the recommended one with why."""

    choices: tuple[Choice, ...]
    recommended: Choice
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; ``recommended`` is an index into ``choices``."""
        return {
            "choices": [c.to_dict() for c in self.choices],
            "recommended": self.choices.index(self.recommended),
            "reason": self.reason,
        }


def _rank(spec: MigrationSpec, choice: Choice) -> tuple[Any, ...]:
    p = choice.prediction
    limit = spec.downtime_limit_s
    over = limit > 0 and p.downtime_s > limit
    return (
        p.aborted,
        over,
        round(p.guest_slowdown_pct, 1),
        round(p.downtime_s, 3),
        round(p.total_time_s, 2),
        _PREFERENCE.index(choice.performance_option),
        POLICIES.index(choice.policy),
    )


def advise(spec: MigrationSpec) -> Advice:
    """Predict ``spec``'s move under every option and policy; recommend one.

    The spec's own performance option and policy do not matter; everything
    else (memory, workload, link, limit, host version) does.
    """
    choices = tuple(
        Choice(performance_option=option, policy=policy, prediction=prediction)
        for option in PERFORMANCE_OPTIONS
        for policy, prediction in zip(
            POLICIES,
            predict_policies(
                replace(spec, performance_option=option, compression=None), POLICIES
            ),
            strict=True,
        )
    )
    best = min(choices, key=lambda c: _rank(spec, c))
    return Advice(choices=choices, recommended=best, reason=best.summary())
