"""The seed's cross-object rules as field-keyed errors, for the models' ``clean()``.

Each function builds the snapshots (``hvweb.inventory.rowsnapshots``), asks
``migrator.rules`` and returns ``{field: [ValidationError, ...]}`` for
``clean()`` to raise. Every error names its rule in its message
(``"BOOT_DRIVE: ..."``) and carries the rule's code as the ValidationError's
``code``, so a form that checks a rule another way (the admin's disk inline)
can leave that rule's errors out. This module imports no model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

from migrator import rules
from migrator.rules import Failure, RuleInputError

from .rowsnapshots import cluster_snapshot, disk_snapshot, host_snapshot, vm_snapshot

if TYPE_CHECKING:
    from .models import ClusterSharedVolume, Host, VirtualDisk, VirtualMachine

__all__ = [
    "Errors",
    "csv_rule_errors",
    "disk_rule_errors",
    "failure_errors",
    "host_rule_errors",
    "rule_failures",
    "vm_rule_errors",
    "without_rule",
]

Errors = dict[str, list[ValidationError]]


def failure_errors(failures: Iterable[Failure], field_for: dict[str, str]) -> Errors:
    """Field-keyed errors from rule failures, each naming its rule.

    ``field_for`` maps a rule's field names to the form field that shows it; a
    failure whose fields are all unmapped lands on ``field_for["*"]`` (default
    ``__all__``, NON_FIELD_ERRORS).
    """
    errors: Errors = {}
    for failure in failures:
        key = next(
            (field_for[f] for f in failure.fields if f in field_for),
            field_for.get("*", "__all__"),
        )
        errors.setdefault(key, []).append(
            ValidationError(f"{failure.code}: {failure.message}", code=failure.code)
        )
    return errors


def rule_failures(evaluate: Callable[[], Sequence[Failure]]) -> Sequence[Failure]:
    """``evaluate()``'s failures; none when a row's own field is invalid.

    A field that fails its own validation (memory 0, an unknown version) cannot
    make a snapshot; its field error already tells the user, so the
    cross-object rules wait until it is fixed.
    """
    try:
        return evaluate()
    except (RuleInputError, TypeError):
        return ()


def without_rule(error: ValidationError, code: str) -> ValidationError:
    """``error`` less the messages of rule ``code`` (kept as field-keyed)."""
    if not hasattr(error, "error_dict"):
        return ValidationError([e for e in error.error_list if e.code != code])
    kept = {
        field: [e for e in errors if e.code != code]
        for field, errors in error.error_dict.items()
    }
    return ValidationError({field: errors for field, errors in kept.items() if errors})


def host_rule_errors(host: Host) -> Errors:
    """BOOT_DRIVE: ``host`` against the other hosts of its cluster."""
    others = [
        host_snapshot(h)
        for h in host.cluster.hosts.exclude(pk=host.pk).select_related("cluster")
    ]
    failures = rule_failures(
        lambda: rules.host_membership_failures(
            host_snapshot(host, load=False), others, cluster_snapshot(host.cluster)
        )
    )
    return failure_errors(failures, {"boot_drive": "boot_drive"})


def csv_rule_errors(csv: ClusterSharedVolume) -> Errors:
    """SHARED_STORAGE: whether the CSV's cluster can hold CSVs at all."""
    failures = rule_failures(
        lambda: rules.csv_placement_failures(cluster_snapshot(csv.cluster))
    )
    return failure_errors(failures, {"cluster": "cluster"})


def vm_rule_errors(vm: VirtualMachine) -> Errors:
    """What refuses ``vm`` being highly available, with its stored disks."""
    failures = rule_failures(
        lambda: rules.ha_configuration_failures(
            vm_snapshot(vm), cluster_snapshot(vm.cluster)
        )
    )
    return failure_errors(
        failures,
        {"automatic_start_action": "automatic_start_action", "*": "highly_available"},
    )


def disk_rule_errors(disk: VirtualDisk, vm: VirtualMachine) -> Errors:
    """HIGHLY_AVAILABLE for this disk alone, on ``vm`` as a form would leave it."""
    failures = [
        f
        for f in rule_failures(
            lambda: rules.ha_configuration_failures(
                vm_snapshot(vm, disks=[disk_snapshot(disk)]),
                cluster_snapshot(vm.cluster),
            )
        )
        if f.code == "HIGHLY_AVAILABLE"
    ]
    return failure_errors(failures, {"disks": "csv"})
