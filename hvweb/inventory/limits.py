"""Hyper-V's own bounds on one virtual machine, the one place they are written.

From Microsoft's "Plan for Hyper-V scalability in Windows Server", maximums
for virtual machines, Windows Server 2025 (the newest version the inventory
knows): 2,048 virtual processors and 240 TB of memory for a generation 2 VM
(generation 1: 64 and 1 TB).
https://learn.microsoft.com/windows-server/virtualization/hyper-v/plan/plan-hyper-v-scalability-in-windows-server

The model's validators use them, so the admin's forms, the API's serializers
(and their schema's ``maximum``) and the importer refuse alike.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator

__all__ = ["MAX_VM_MEMORY_MIB", "MAX_VM_VCPUS", "vm_memory_max", "vm_vcpus_max"]

#: Virtual processors of a generation 2 VM on Windows Server 2025.
MAX_VM_VCPUS = 2048
#: 240 TB of memory for a generation 2 VM, in MiB (251,658,240).
MAX_VM_MEMORY_MIB = 240 * 1024 * 1024


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
