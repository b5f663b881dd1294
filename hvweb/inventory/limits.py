"""Hyper-V's own bounds on one virtual machine, as the model's validators.

The figures (and Microsoft's page they come from) are in ``migrator.hyperv``,
where the import parser reads them too; the model's validators built here
make the admin's forms, the API's serializers (and their schema's
``maximum``) refuse alike.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator

from migrator.hyperv import MAX_VM_MEMORY_MIB, MAX_VM_VCPUS

__all__ = ["MAX_VM_MEMORY_MIB", "MAX_VM_VCPUS", "vm_memory_max", "vm_vcpus_max"]


def vm_vcpus_max() -> MaxValueValidator:
    return MaxValueValidator(
        MAX_VM_VCPUS,
        f"Hyper-V gives a VM at most {MAX_VM_VCPUS:,} virtual processors "
        "(generation 2, Windows Server 2025).",
    )


def vm_memory_max() -> MaxValueValidator:
    return MaxValueValidator(
        MAX_VM_MEMORY_MIB,
        f"Hyper-V gives a VM at most 240 TB ({MAX_VM_MEMORY_MIB:,} MiB) of memory "
        "(generation 2, Windows Server 2025).",
    )
