"""Inventory actions shared by the admin, the pages and (later) the API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from hvweb.core.locking import locked
from migrator import rules
from migrator.rules import Failure

from . import snapshots
from .models import VirtualMachine


@dataclass(frozen=True, slots=True, kw_only=True)
class HAOutcome:
    """What "Configure as highly available" did to one VM."""

    vm: VirtualMachine
    configured: bool
    already: bool = False
    failures: tuple[Failure, ...] = ()

    def __str__(self) -> str:
        if self.already:
            return f"{self.vm} was already highly available."
        if self.configured:
            return f"{self.vm} is now highly available."
        reasons = " ".join(f"{f.code}: {f.message}" for f in self.failures)
        return f"{self.vm} was not configured as highly available. {reasons}"


def configure_highly_available(vms: Iterable[VirtualMachine]) -> list[HAOutcome]:
    """Mark highly available each VM that the rules allow; report the others.

    Callers pass only VMs the user may operate (``.restrict(user, "operate")``).
    Each VM is decided in its own transaction on fresh rows, so a refused VM
    leaves nothing behind and does not hold back the others.
    """
    outcomes = []
    for vm in vms:
        with transaction.atomic():
            vm = locked(VirtualMachine.objects.select_related("host__cluster"), vm.pk)
            if vm is None:
                raise VirtualMachine.DoesNotExist
            if vm.highly_available:
                outcomes.append(HAOutcome(vm=vm, configured=False, already=True))
                continue
            failures = rules.ha_configuration_failures(
                snapshots.vm_snapshot(vm), snapshots.cluster_snapshot(vm.cluster)
            )
            if failures:
                outcomes.append(HAOutcome(vm=vm, configured=False, failures=failures))
                continue
            vm.highly_available = True
            vm.full_clean()
            vm.save(update_fields=["highly_available"])
            outcomes.append(HAOutcome(vm=vm, configured=True))
    return outcomes
