"""Identity that fits real clusters, and where an imported cluster came from.

Names repeat in real estates: a cluster's name is unique within its team, a
host's within its cluster, and a VM is known by its VMId. A MAC address is no
longer unique across the whole console (two teams may import the same
inventory): the database keeps one VM's adapters apart, ``clean()`` a cluster's.
Existing VMs get a VMId each (a random one, as Hyper-V gives a new VM).
"""

import uuid

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def give_each_vm_an_id(apps, schema_editor):
    VirtualMachine = apps.get_model("inventory", "VirtualMachine")
    for vm in VirtualMachine.objects.filter(vm_id__isnull=True).only("pk"):
        VirtualMachine.objects.filter(pk=vm.pk).update(vm_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Names: unique in their scope, no longer across the console.
        migrations.AlterField(
            model_name="cluster",
            name="name",
            field=models.CharField(max_length=100),
        ),
        migrations.AlterField(
            model_name="host",
            name="name",
            field=models.CharField(max_length=100),
        ),
        migrations.AlterField(
            model_name="virtualmachine",
            name="name",
            field=models.CharField(db_index=True, max_length=100),
        ),
        migrations.AlterField(
            model_name="networkadapter",
            name="mac_address",
            field=models.CharField(
                max_length=17,
                validators=[
                    django.core.validators.RegexValidator(
                        "^[0-9A-F]{2}(-[0-9A-F]{2}){5}$",
                        "Write the MAC address as 00-15-5D-01-02-03.",
                    )
                ],
                verbose_name="MAC address",
            ),
        ),
        migrations.AddConstraint(
            model_name="cluster",
            constraint=models.UniqueConstraint(
                fields=("team", "name"),
                name="cluster_name_unique_in_team",
                violation_error_message="This team already has a cluster of that name.",
            ),
        ),
        migrations.AddConstraint(
            model_name="host",
            constraint=models.UniqueConstraint(
                fields=("cluster", "name"),
                name="host_name_unique_in_cluster",
                violation_error_message="This cluster already has a host of that name.",
            ),
        ),
        migrations.AddConstraint(
            model_name="networkadapter",
            constraint=models.UniqueConstraint(
                condition=models.Q(("mac_address", "00-00-00-00-00-00"), _negated=True),
                fields=("vm", "mac_address"),
                name="adapter_mac_unique_in_vm",
                violation_error_message="Another adapter already has this MAC address.",
            ),
        ),
        # The VM's identity: Hyper-V's VMId.
        migrations.AddField(
            model_name="virtualmachine",
            name="vm_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(give_each_vm_an_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="virtualmachine",
            name="vm_id",
            field=models.UUIDField(
                db_index=True, default=uuid.uuid4, editable=False, verbose_name="VMId"
            ),
        ),
        migrations.AddField(
            model_name="virtualmachine",
            name="workload_assumed",
            field=models.BooleanField(
                default=False,
                help_text="The workload profile is an assumption (an imported VM), "
                "not measured or chosen.",
            ),
        ),
        migrations.AlterField(
            model_name="virtualdisk",
            name="size_gib",
            field=models.PositiveIntegerField(
                blank=True,
                default=40,
                help_text="Empty when unknown (an import without Get-VHD's size).",
                null=True,
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="size (GiB)",
            ),
        ),
        # Where an imported cluster came from.
        migrations.AddField(
            model_name="cluster",
            name="hyperv_id",
            field=models.UUIDField(
                blank=True,
                editable=False,
                help_text="Get-Cluster's Id: the real cluster behind an import.",
                null=True,
                unique=True,
                verbose_name="failover cluster Id",
            ),
        ),
        migrations.AddField(
            model_name="cluster",
            name="imported_from",
            field=models.CharField(blank=True, editable=False, max_length=255),
        ),
        migrations.AddField(
            model_name="cluster",
            name="imported_sha256",
            field=models.CharField(
                blank=True,
                editable=False,
                max_length=64,
                verbose_name="imported file's SHA-256",
            ),
        ),
        migrations.AddField(
            model_name="cluster",
            name="imported_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="cluster",
            name="imported_by",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="cluster",
            name="exported_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="cluster",
            name="exported_on",
            field=models.CharField(
                blank=True,
                editable=False,
                max_length=255,
                verbose_name="exported on (computer)",
            ),
        ),
    ]
