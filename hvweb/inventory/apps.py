from django.apps import AppConfig


class InventoryConfig(AppConfig):
    """Clusters, hosts, CSVs, VMs, their disks and adapters; teams and roles."""

    name = "hvweb.inventory"
    label = "inventory"
    verbose_name = "Inventory"
