"""Advice for one VM: every convergence policy under every performance option.

The console's side of :func:`migrator.advise.advise`: the VM's workload and
its cluster's link become the engine's spec (:func:`hvweb.moves.runner.
build_spec`, the one translation from rows), under the move options an
operator would get by default (the cluster's settings), and the predictor
ranks the twelve choices. The VM page's table, its "Start the recommended
move" button and ``GET /api/vms/<id>/advice/`` all read this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hvweb.inventory.models import VirtualMachine
from migrator.advise import Advice, advise
from migrator.spec import OPTION_LABELS

from .options import MoveOptions
from .runner import build_spec

__all__ = ["VmAdvice", "vm_advice"]


@dataclass(frozen=True, slots=True)
class VmAdvice:
    """The advice for ``vm`` and the inputs it was computed for."""

    vm: VirtualMachine
    options: MoveOptions
    advice: Advice

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the inputs, every choice and the recommended one."""
        advice = self.advice.to_dict()
        for row in advice["choices"]:
            row["performance_option_label"] = OPTION_LABELS[row["performance_option"]]
        return {
            "vm": self.vm.pk,
            "link_bandwidth_mbps": self.vm.host.cluster.link_bandwidth_mbps,
            "downtime_limit_ms": self.options.downtime_limit_ms,
            "host_version": self.vm.host.hyperv_version,
            **advice,
        }

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The choices as the page's table shows them, the recommended marked."""
        data = self.to_dict()
        for i, row in enumerate(data["choices"]):
            row["recommended"] = i == data["recommended"]
        return data["choices"]


def vm_advice(vm: VirtualMachine, *, downtime_limit_ms: Any = None) -> VmAdvice:
    """Predict moving ``vm`` off its host under every option and policy.

    ``downtime_limit_ms`` defaults to a move's (ValidationError names it when
    it is out of bounds); the performance option and policy are what advice
    varies.
    """
    cluster = vm.host.cluster
    options = MoveOptions.parse(cluster, downtime_limit_ms=downtime_limit_ms)
    spec = build_spec(
        vm,
        vm.host,
        cluster,
        performance_option=options.performance_option,
        downtime_limit_ms=options.downtime_limit_ms,
    )
    return VmAdvice(vm=vm, options=options, advice=advise(spec))
