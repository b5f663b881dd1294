"""Migration 0002: existing VMs get a VMId each; names repeat where they may."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("inventory", "0001_initial")]
AFTER = [("inventory", "0002_identity_and_provenance")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps():
    from django.db.migrations.loader import MigrationLoader

    leaves = MigrationLoader(connection).graph.leaf_nodes()
    apps = migrate(BEFORE)
    yield apps
    migrate(leaves)


def test_existing_vms_get_distinct_vmids_and_names_may_then_repeat(old_apps):
    Team = old_apps.get_model("inventory", "Team")
    Cluster = old_apps.get_model("inventory", "Cluster")
    Host = old_apps.get_model("inventory", "Host")
    VirtualMachine = old_apps.get_model("inventory", "VirtualMachine")
    team = Team.objects.create(name="Old")
    cluster = Cluster.objects.create(name="CLU-OLD", team=team, storage_kind="iscsi")
    host = Host.objects.create(
        name="HV01", cluster=cluster, hyperv_version="2019", cpu_vendor="intel",
        boot_drive="C", memory_mib=4096,
    )  # fmt: skip
    for name in ("a", "b", "c"):
        VirtualMachine.objects.create(name=name, host=host, memory_mib=512)

    apps = migrate(AFTER)
    VirtualMachine = apps.get_model("inventory", "VirtualMachine")
    ids = list(VirtualMachine.objects.values_list("vm_id", flat=True))
    assert len(ids) == 3 and None not in ids and len(set(ids)) == 3
    # A second team may now hold a cluster of the same name, with a host HV01
    # and a VM "a".
    Team = apps.get_model("inventory", "Team")
    Cluster = apps.get_model("inventory", "Cluster")
    Host = apps.get_model("inventory", "Host")
    other = Cluster.objects.create(
        name="CLU-OLD", team=Team.objects.create(name="New"), storage_kind="iscsi"
    )
    twin = Host.objects.create(
        name="HV01", cluster=other, hyperv_version="2019", cpu_vendor="intel",
        boot_drive="C", memory_mib=4096,
    )  # fmt: skip
    VirtualMachine.objects.create(name="a", host=twin, memory_mib=512)
    assert VirtualMachine.objects.filter(name="a").count() == 2
