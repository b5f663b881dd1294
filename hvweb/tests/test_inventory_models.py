"""The inventory's models: constraints the database keeps, rules clean() applies."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from hvweb.inventory import choices, snapshots
from hvweb.inventory.models import (
    ClusterSharedVolume,
    Host,
    NetworkAdapter,
    VirtualDisk,
    VirtualMachine,
)
from hvweb.inventory.testing import make_host, make_vm, make_world
from migrator import hyperv, rules

pytestmark = pytest.mark.django_db


def test_choices_store_the_rules_vocabulary():
    assert choices.HyperVVersion.values == list(hyperv.VERSIONS)
    assert set(choices.CpuVendor.values) == set(rules.CPU_VENDORS)
    assert set(choices.HostState.values) == set(rules.HOST_STATES)
    assert set(choices.PowerState.values) == set(rules.POWER_STATES)
    assert set(choices.AutomaticStartAction.values) == set(
        rules.AUTOMATIC_START_ACTIONS
    )
    assert set(choices.StorageKind.values) == set(rules.STORAGE_KINDS)
    assert set(choices.DiskKind.values) == set(rules.DISK_KINDS)
    assert choices.DriveLetter.values == list(rules.DRIVE_LETTERS)


def test_every_choice_has_a_colour():
    assert choices.HyperVVersion("2008").colour == "red"
    assert choices.HyperVVersion("2008 R2").colour == "green"
    assert choices.HostState.DOWN.colour == "red"
    for cls in (choices.Role, choices.WorkloadProfile, choices.CsvState):
        assert all(member.colour for member in cls)


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (Host, "memory_mib", 0),
        (Host, "boot_drive", "B"),
        (VirtualMachine, "memory_mib", 0),
    ],
)
def test_the_database_refuses_what_must_never_be_stored(model, field, value):
    world = make_world()
    obj = world.hosts[1] if model is Host else world.vm
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=obj.pk).update(**{field: value})


def test_the_database_refuses_a_malformed_mac_address():
    world = make_world()
    adapter = world.vm.adapters.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        NetworkAdapter.objects.filter(pk=adapter.pk).update(mac_address="nonsense")


def test_validation_names_the_constraint_in_words():
    world = make_world()
    duplicate = ClusterSharedVolume(
        cluster=world.cluster,
        name="Volume1",
        path="C:\\ClusterStorage\\Volume9",
        capacity_gib=1,
    )
    with pytest.raises(ValidationError) as caught:
        duplicate.full_clean()
    assert "This cluster already has a CSV of that name." in str(caught.value)


def test_a_mac_address_with_colons_is_stored_in_hyper_v_form():
    world = make_world()
    adapter = NetworkAdapter(
        vm=world.vm, mac_address="00:15:5d:aa:bb:cc", virtual_switch="vSwitch"
    )
    adapter.full_clean()
    assert adapter.mac_address == "00-15-5D-AA-BB-CC"


def test_a_duplicate_mac_address_is_refused():
    world = make_world()
    taken = world.vm.adapters.get().mac_address
    adapter = NetworkAdapter(vm=world.vm, mac_address=taken, virtual_switch="x")
    with pytest.raises(ValidationError, match="already has this MAC address"):
        adapter.full_clean()


def test_clean_turns_rule_failures_into_field_keyed_errors():
    world = make_world()
    vm = make_vm(world.hosts[1], "local-1", csv=None, highly_available=False)
    vm.highly_available = True
    vm.automatic_start_action = "always_start"
    with pytest.raises(ValidationError) as caught:
        vm.full_clean()
    errors = caught.value.message_dict
    assert errors["highly_available"][0].startswith("HIGHLY_AVAILABLE: Disk local-1")
    assert errors["automatic_start_action"][0].startswith("AUTO_START_ACTION: ")


def test_a_disk_on_another_clusters_csv_is_refused_even_for_a_plain_vm():
    blue, red = make_world("BLUE"), make_world("RED")
    vm = make_vm(blue.hosts[1], "plain", csv=None, highly_available=False)
    disk = VirtualDisk(vm=vm, name="x.vhdx", kind="vhdx", csv=red.csv)
    with pytest.raises(ValidationError, match="is not a volume of CLU-BLUE"):
        disk.full_clean()


def test_a_host_running_vms_cannot_change_cluster():
    blue, red = make_world("BLUE"), make_world("RED")
    host = blue.hosts[0]
    host.cluster = red.cluster
    with pytest.raises(ValidationError, match="move them to other hosts first"):
        host.full_clean()


def test_snapshots_carry_memory_in_use_and_the_clusters_limit():
    world = make_world()
    world.cluster.max_simultaneous_migrations = 3
    world.cluster.save()
    make_vm(world.hosts[0], "off-1", csv=world.csv, power_state="off")
    snap = snapshots.host_snapshot(Host.objects.get(pk=world.hosts[0].pk))
    assert snap.vm_memory_mib == 1024  # the running VM; the one that is off holds none
    assert snap.max_simultaneous_migrations == 3
    assert snap.reserved_memory_mib == 0 and snap.active_migrations == 0


def test_readiness_checks_each_vm_against_every_other_host_of_its_cluster():
    world = make_world()
    make_host(world.cluster, "HV-BLUE-AMD", cpu_vendor="amd")
    results = snapshots.readiness(VirtualMachine.objects.all())
    by_host = {r.destination.name: r.codes for r in results}
    assert by_host == {"HV-BLUE-2": [], "HV-BLUE-3": [], "HV-BLUE-AMD": ["CPU_VENDOR"]}
