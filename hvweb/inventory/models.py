"""The inventory: teams and roles, clusters, hosts, CSVs, VMs, disks and adapters.

Single-row checks live in field validators and ``clean()``; rules that span
objects are ``migrator.rules`` functions, which ``clean()`` calls through
``hvweb.inventory.validation`` as field-keyed ValidationErrors. Database
constraints back what must never be stored at all.

Every model names ``team_path``, the lookup from it to its owning Team, which
``Model.objects.restrict(user, action)`` follows
(``hvweb.inventory.querysets``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from hvweb.core.urls import url_of
from migrator.hyperv import DEFAULT_MOVE_TYPE_THRESHOLD, DEFAULT_PRIORITY
from migrator.rules import DRIVE_LETTERS
from migrator.spec import DEFAULT_COMPRESSION_BPS

from . import limits, validation
from .choices import (
    AutomaticStartAction,
    CpuVendor,
    CsvState,
    DiskKind,
    DriveLetter,
    HostState,
    HyperVVersion,
    MigrationPolicy,
    PerformanceOption,
    PowerState,
    Priority,
    Role,
    StorageKind,
    WorkloadProfile,
)
from .querysets import RestrictedQuerySet, VirtualMachineQuerySet

#: Hyper-V's MAC address form, as Get-VMNetworkAdapter shows it.
MAC_PATTERN = r"^[0-9A-F]{2}(-[0-9A-F]{2}){5}$"
#: What Get-VMNetworkAdapter shows before a dynamic MAC is assigned.
UNASSIGNED_MAC = "00-00-00-00-00-00"
#: A Cluster Shared Volume's mount point under the system drive.
CSV_PATH_PATTERN = r"^[C-Z]:\\ClusterStorage\\[^\\/:*?\"<>|]+$"
#: The guest's memory page size the engine simulates.
PAGE_SIZE_KIB = 4


def _add(errors: dict[str, list], more: dict[str, list]) -> None:
    for key, messages in more.items():
        errors.setdefault(key, []).extend(messages)


class Team(models.Model):
    """A group of people that owns clusters."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    objects = RestrictedQuerySet.as_manager()

    team_path = ""

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in a team: viewer, operator or administrator."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role, default=Role.VIEWER)

    objects = RestrictedQuerySet.as_manager()

    team_path = "team"

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "team"],
                name="membership_user_team_unique",
                violation_error_message="This user already has a role in this team.",
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values),
                name="membership_role_valid",
                violation_error_message="Role must be viewer, operator or "
                "administrator.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.get_role_display()} of {self.team}"


class Cluster(models.Model):
    """A failover cluster and its live-migration settings."""

    name = models.CharField(max_length=100)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="clusters")
    shared_storage = models.BooleanField(
        "shared storage enabled",
        default=True,
        help_text="Live migration needs the cluster's shared storage enabled.",
    )
    storage_kind = models.CharField(
        max_length=20, choices=StorageKind, default=StorageKind.ISCSI
    )
    max_simultaneous_migrations = models.PositiveSmallIntegerField(
        "simultaneous live migrations per host",
        default=2,
        validators=[MinValueValidator(1)],
        help_text="Hyper-V's default is 2.",
    )
    performance_option = models.CharField(
        max_length=20, choices=PerformanceOption, default=PerformanceOption.COMPRESSION
    )
    default_policy = models.CharField(
        "default convergence policy",
        max_length=20,
        choices=MigrationPolicy,
        default=MigrationPolicy.HYPERV,
        help_text="What pre-copy does with a guest that will not converge, for "
        "moves that do not choose one.",
    )
    link_bandwidth_mbps = models.PositiveIntegerField(
        "live-migration link (Mbit/s)",
        default=1000,
        validators=[MinValueValidator(1)],
        help_text="Bandwidth the simulated migration network carries.",
    )
    simulation_speed = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.01)],
        help_text="How much faster than real time demo moves are paced (1 = real "
        "time).",
    )
    move_type_threshold = models.PositiveSmallIntegerField(
        "move type threshold",
        default=DEFAULT_MOVE_TYPE_THRESHOLD,
        help_text="Failover Clustering's MoveTypeThreshold: a drain live-migrates "
        "VMs of this priority or higher and quick-migrates the rest (default 2000, "
        "Medium).",
    )
    description = models.TextField(blank=True)
    # Provenance of a cluster brought in with ``import_hyperv`` (empty otherwise).
    hyperv_id = models.UUIDField(
        "failover cluster Id",
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="Get-Cluster's Id: the real cluster behind an import.",
    )
    imported_from = models.CharField(max_length=255, blank=True, editable=False)
    imported_sha256 = models.CharField(
        "imported file's SHA-256", max_length=64, blank=True, editable=False
    )
    imported_at = models.DateTimeField(null=True, blank=True, editable=False)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    exported_at = models.DateTimeField(null=True, blank=True, editable=False)
    exported_on = models.CharField(
        "exported on (computer)", max_length=255, blank=True, editable=False
    )

    objects = RestrictedQuerySet.as_manager()

    team_path = "team"

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "name"],
                name="cluster_name_unique_in_team",
                violation_error_message="This team already has a cluster of that name.",
            ),
            models.CheckConstraint(
                condition=Q(max_simultaneous_migrations__gte=1),
                name="cluster_max_migrations_positive",
                violation_error_message="A cluster allows at least one live "
                "migration per host.",
            ),
            models.CheckConstraint(
                condition=Q(link_bandwidth_mbps__gt=0),
                name="cluster_bandwidth_positive",
                violation_error_message="The link bandwidth must be more than 0.",
            ),
            models.CheckConstraint(
                condition=Q(simulation_speed__gt=0),
                name="cluster_simulation_speed_positive",
                violation_error_message="The simulation speed must be more than 0.",
            ),
            models.CheckConstraint(
                condition=Q(storage_kind__in=StorageKind.values),
                name="cluster_storage_kind_valid",
                violation_error_message="Unknown storage kind.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return url_of("inventory:cluster", self.pk)

    def clean(self) -> None:
        super().clean()
        errors: dict[str, list[str]] = {}
        san = self.storage_kind in (StorageKind.FIBRE_CHANNEL, StorageKind.ISCSI)
        if self.shared_storage and not san:
            errors.setdefault("storage_kind", []).append(
                "Shared storage is enabled, so say which SAN provides it: Fibre "
                "Channel or iSCSI."
            )
        if not self.shared_storage and self.pk and self.csvs.exists():
            errors.setdefault("shared_storage", []).append(
                "SHARED_STORAGE: this cluster has Cluster Shared Volumes, which live "
                "on its shared storage: remove them before disabling shared storage."
            )
        if errors:
            raise ValidationError(errors)


#: The fastest compression rate a host may be given (Mbit/s): 1 Tbit/s, far
#: beyond any link (a rate above the link's only means pages are encoded in
#: time, so more buys nothing).
COMPRESSION_MBPS_MAX = 1_000_000


class Host(models.Model):
    """A Hyper-V host, listed in one cluster."""

    name = models.CharField(max_length=100)
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="hosts")
    hyperv_version = models.CharField(
        "Hyper-V version", max_length=10, choices=HyperVVersion
    )
    cpu_vendor = models.CharField("CPU vendor", max_length=10, choices=CpuVendor)
    cpu_model = models.CharField("CPU model", max_length=100, blank=True)
    boot_drive = models.CharField(
        max_length=1, choices=DriveLetter, default=DriveLetter.C
    )
    memory_mib = models.PositiveIntegerField(
        "memory (MiB)", validators=[MinValueValidator(1)]
    )
    shared_storage_connected = models.BooleanField(
        "connected to shared storage",
        default=True,
        help_text="Reaches the cluster's SAN (Fibre Channel or iSCSI).",
    )
    cluster_node = models.BooleanField(
        "failover cluster node",
        default=True,
        help_text="Joined to the failover cluster (Add-ClusterNode). A host listed "
        "in a cluster but not joined cannot live-migrate.",
    )
    state = models.CharField(max_length=10, choices=HostState, default=HostState.UP)
    compression_mbps = models.PositiveIntegerField(
        "compression rate (Mbit/s)",
        default=round(DEFAULT_COMPRESSION_BPS / 1e6),
        validators=[MinValueValidator(1), MaxValueValidator(COMPRESSION_MBPS_MAX)],
        help_text="How much page data this host's spare CPU delta-encodes a second "
        "when it sends a VM under the Compression option (megabits a second). "
        "At or below the link's rate compression gains nothing, and pages travel "
        "as under TCP/IP.",
    )

    objects = RestrictedQuerySet.as_manager()

    team_path = "cluster__team"

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "name"],
                name="host_name_unique_in_cluster",
                violation_error_message="This cluster already has a host of that name.",
            ),
            models.CheckConstraint(
                condition=Q(memory_mib__gt=0),
                name="host_memory_positive",
                violation_error_message="A host's memory must be more than 0 MiB.",
            ),
            models.CheckConstraint(
                condition=Q(boot_drive__in=DRIVE_LETTERS),
                name="host_boot_drive_c_to_z",
                violation_error_message="The boot drive is a letter from C to Z.",
            ),
            models.CheckConstraint(
                condition=Q(hyperv_version__in=HyperVVersion.values),
                name="host_hyperv_version_valid",
                violation_error_message="Unknown Hyper-V version.",
            ),
            models.CheckConstraint(
                condition=Q(cpu_vendor__in=CpuVendor.values),
                name="host_cpu_vendor_valid",
                violation_error_message="The CPU vendor is Intel or AMD.",
            ),
            models.CheckConstraint(
                condition=Q(compression_mbps__gte=1)
                & Q(compression_mbps__lte=COMPRESSION_MBPS_MAX),
                name="host_compression_rate_in_range",
                violation_error_message="A host's compression rate is 1 to "
                f"{COMPRESSION_MBPS_MAX:,} Mbit/s.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return url_of("inventory:host", self.pk)

    def clean(self) -> None:
        super().clean()
        if self.cluster_id is None:
            return
        errors: dict[str, list] = {}
        if self.pk:
            before = Host.objects.filter(pk=self.pk).values_list(
                "cluster_id", flat=True
            )
            if before and before[0] != self.cluster_id:
                if self.virtual_machines.exists():
                    errors["cluster"] = [
                        "This host runs VMs of its cluster: move them to other hosts "
                        "first, then move the host to another cluster."
                    ]
        _add(errors, validation.host_rule_errors(self))
        if errors:
            raise ValidationError(errors)


class ClusterSharedVolume(models.Model):
    """A Cluster Shared Volume on the cluster's SAN."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="csvs")
    name = models.CharField(max_length=100)
    path = models.CharField(
        max_length=260,
        validators=[
            RegexValidator(
                CSV_PATH_PATTERN,
                "A CSV's path looks like C:\\ClusterStorage\\Volume1.",
            )
        ],
        help_text="For example C:\\ClusterStorage\\Volume1.",
    )
    capacity_gib = models.PositiveIntegerField(
        "capacity (GiB)", validators=[MinValueValidator(1)]
    )
    owner = models.ForeignKey(
        Host,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_csvs",
        help_text="The coordinator node.",
    )
    state = models.CharField(max_length=20, choices=CsvState, default=CsvState.ONLINE)

    objects = RestrictedQuerySet.as_manager()

    team_path = "cluster__team"

    class Meta:
        verbose_name = "Cluster Shared Volume"
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "name"],
                name="csv_name_unique_in_cluster",
                violation_error_message="This cluster already has a CSV of that name.",
            ),
            models.UniqueConstraint(
                fields=["cluster", "path"],
                name="csv_path_unique_in_cluster",
                violation_error_message="This cluster already has a CSV at that path.",
            ),
            models.CheckConstraint(
                condition=Q(capacity_gib__gt=0),
                name="csv_capacity_positive",
                violation_error_message="A CSV's capacity must be more than 0 GiB.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cluster} · {self.name}"

    def clean(self) -> None:
        super().clean()
        if self.cluster_id is None:
            return
        errors = validation.csv_rule_errors(self)
        if self.owner_id is not None and self.owner.cluster_id != self.cluster_id:
            errors.setdefault("owner", []).append(
                f"{self.owner} is not a host of {self.cluster}: the owner node is "
                f"one of the cluster's hosts."
            )
        if errors:
            raise ValidationError(errors)


class VirtualMachine(models.Model):
    """A virtual machine on its current host (the owner)."""

    name = models.CharField(max_length=100, db_index=True)
    #: Hyper-V's VMId: the VM's identity (names repeat across clusters). Random
    #: for VMs made here; the cluster's own for imported ones, which the
    #: importer keeps unique within each cluster.
    vm_id = models.UUIDField("VMId", default=uuid.uuid4, editable=False, db_index=True)
    host = models.ForeignKey(
        Host, on_delete=models.PROTECT, related_name="virtual_machines"
    )
    memory_mib = models.PositiveIntegerField(
        "memory (MiB)", validators=[MinValueValidator(1), limits.vm_memory_max()]
    )
    vcpus = models.PositiveSmallIntegerField(
        "vCPUs", default=1, validators=[MinValueValidator(1), limits.vm_vcpus_max()]
    )
    power_state = models.CharField(
        max_length=10, choices=PowerState, default=PowerState.RUNNING
    )
    highly_available = models.BooleanField(
        default=False,
        help_text="A clustered role: needs every disk on the cluster's CSVs and "
        "the Automatic Start Action Nothing.",
    )
    automatic_start_action = models.CharField(
        max_length=20,
        choices=AutomaticStartAction,
        default=AutomaticStartAction.NOTHING,
    )
    priority = models.PositiveSmallIntegerField(
        choices=Priority,
        default=DEFAULT_PRIORITY,
        help_text="The cluster role's priority: a drain moves High first, then "
        "Medium; below the cluster's move type threshold it quick-migrates.",
    )
    workload_profile = models.CharField(
        max_length=20, choices=WorkloadProfile, default=WorkloadProfile.IDLE
    )
    write_rate = models.PositiveIntegerField(
        "write rate (pages/s)",
        default=100,
        help_text="Guest page writes per second in the simulation.",
    )
    working_set_pages = models.PositiveIntegerField(
        default=1024,
        validators=[MinValueValidator(1)],
        help_text=f"Pages ({PAGE_SIZE_KIB} KiB) the guest writes to.",
    )
    workload_assumed = models.BooleanField(
        default=False,
        help_text="The workload profile is an assumption (an imported VM), not "
        "measured or chosen.",
    )

    objects = VirtualMachineQuerySet.as_manager()

    team_path = "host__cluster__team"

    class Meta:
        verbose_name = "virtual machine"
        ordering = ["name"]
        permissions = [
            ("configure_ha", "Can configure virtual machines as highly available"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(memory_mib__gt=0),
                name="vm_memory_positive",
                violation_error_message="A VM's memory must be more than 0 MiB.",
            ),
            models.CheckConstraint(
                condition=Q(vcpus__gt=0),
                name="vm_vcpus_positive",
                violation_error_message="A VM has at least one vCPU.",
            ),
            models.CheckConstraint(
                condition=Q(working_set_pages__gt=0),
                name="vm_working_set_positive",
                violation_error_message="The working set is at least one page.",
            ),
            models.CheckConstraint(
                condition=Q(priority__in=Priority.values),
                name="vm_priority_valid",
                violation_error_message="Priority is High (3000), Medium (2000), "
                "Low (1000) or No Auto Start (0).",
            ),
            models.CheckConstraint(
                condition=Q(automatic_start_action__in=AutomaticStartAction.values),
                name="vm_start_action_valid",
                violation_error_message="Unknown Automatic Start Action.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return url_of("inventory:vm", self.pk)

    @property
    def cluster(self) -> Cluster:
        return self.host.cluster

    def clean(self) -> None:
        super().clean()
        errors: dict[str, list] = {}
        if (
            self.memory_mib
            and self.working_set_pages
            and self.working_set_pages > self.memory_mib * 1024 // PAGE_SIZE_KIB
        ):
            errors["working_set_pages"] = [
                f"The working set cannot exceed the VM's "
                f"{self.memory_mib * 1024 // PAGE_SIZE_KIB} pages of memory."
            ]
        if self.highly_available and self.host_id is not None:
            _add(errors, validation.vm_rule_errors(self))
        if errors:
            raise ValidationError(errors)


class VirtualDisk(models.Model):
    """A VHD, VHDX or passthrough disk, on a CSV or on the host's local storage."""

    vm = models.ForeignKey(
        VirtualMachine,
        on_delete=models.CASCADE,
        related_name="disks",
        verbose_name="virtual machine",
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=DiskKind, default=DiskKind.VHDX)
    csv = models.ForeignKey(
        ClusterSharedVolume,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="disks",
        verbose_name="Cluster Shared Volume",
        help_text="Empty: the disk is on the host's local storage.",
    )
    path = models.CharField(max_length=260, blank=True)
    size_gib = models.PositiveIntegerField(
        "size (GiB)",
        default=40,
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Empty when unknown (an import without Get-VHD's size).",
    )

    objects = RestrictedQuerySet.as_manager()

    team_path = "vm__host__cluster__team"

    class Meta:
        verbose_name = "virtual disk"
        ordering = ["vm__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["vm", "name"],
                name="disk_name_unique_in_vm",
                violation_error_message="This VM already has a disk of that name.",
            ),
            models.CheckConstraint(
                condition=Q(size_gib__gt=0),
                name="disk_size_positive",
                violation_error_message="A disk's size must be more than 0 GiB.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def on_local_storage(self) -> bool:
        return self.csv_id is None

    def clean(self) -> None:
        super().clean()
        # In the admin's inline the VM may be unsaved, with the form's changes.
        vm = self.vm if (self.vm_id or VirtualDisk.vm.is_cached(self)) else None
        if vm is None or vm.host_id is None:
            return
        if not vm.highly_available:
            if self.csv_id and self.csv.cluster_id != vm.host.cluster_id:
                raise ValidationError(
                    {
                        "csv": f"{self.csv} is not a volume of {vm.cluster}, so "
                        f"{vm.host} cannot reach it: choose a CSV of {vm.cluster} "
                        f"or local storage."
                    }
                )
            return
        errors = validation.disk_rule_errors(self, vm)
        if errors:
            raise ValidationError(errors)


class NetworkAdapter(models.Model):
    """A VM's network adapter: its MAC address and the virtual switch it is on."""

    vm = models.ForeignKey(
        VirtualMachine,
        on_delete=models.CASCADE,
        related_name="adapters",
        verbose_name="virtual machine",
    )
    name = models.CharField(max_length=100, default="Network Adapter")
    mac_address = models.CharField(
        "MAC address",
        max_length=17,
        validators=[
            RegexValidator(MAC_PATTERN, "Write the MAC address as 00-15-5D-01-02-03.")
        ],
    )
    virtual_switch = models.CharField(max_length=100)

    objects = RestrictedQuerySet.as_manager()

    team_path = "vm__host__cluster__team"

    class Meta:
        ordering = ["vm__name", "name"]
        constraints = [
            # Within a cluster (its VMs share the networks) clean() refuses a
            # MAC in use; the database keeps at least one VM's adapters apart.
            # 00-00-00-00-00-00 is Hyper-V's "not assigned yet" (a VM never
            # started with a dynamic MAC), which several adapters may show.
            models.UniqueConstraint(
                fields=["vm", "mac_address"],
                condition=~Q(mac_address=UNASSIGNED_MAC),
                name="adapter_mac_unique_in_vm",
                violation_error_message="Another adapter already has this MAC address.",
            ),
            models.CheckConstraint(
                condition=Q(mac_address__regex=MAC_PATTERN),
                name="adapter_mac_format",
                violation_error_message="Write the MAC address as 00-15-5D-01-02-03.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.mac_address})"

    def clean_fields(self, exclude: Iterable[str] | None = None) -> None:
        # Accept 00:15:5d:01:02:03 and store Hyper-V's form.
        if self.mac_address:
            self.mac_address = self.mac_address.strip().upper().replace(":", "-")
        super().clean_fields(exclude=exclude)

    def clean(self) -> None:
        super().clean()
        vm = self.vm if (self.vm_id or NetworkAdapter.vm.is_cached(self)) else None
        if vm is None or vm.host_id is None or self.mac_address == UNASSIGNED_MAC:
            return
        taken = NetworkAdapter.objects.filter(
            vm__host__cluster_id=vm.host.cluster_id, mac_address=self.mac_address
        ).exclude(pk=self.pk)
        if taken.exists():
            raise ValidationError(
                {
                    "mac_address": "Another adapter already has this MAC address "
                    f"in {vm.host.cluster}: a MAC is unique within a cluster."
                }
            )
