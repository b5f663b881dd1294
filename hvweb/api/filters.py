"""Query filters for the list endpoints.

Related objects are filtered by id with plain number filters, not choice
filters: a choice filter would answer "not a valid choice" for an id that does
not exist and an empty page for another team's, telling the two apart.
"""

from __future__ import annotations

import django_filters as filters

from hvweb.inventory.models import Cluster, ClusterSharedVolume, Host, VirtualMachine


class ClusterFilter(filters.FilterSet):
    team = filters.NumberFilter(field_name="team_id")
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Cluster
        fields = ["team", "name", "storage_kind", "performance_option"]


class HostFilter(filters.FilterSet):
    cluster = filters.NumberFilter(field_name="cluster_id")
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Host
        fields = ["cluster", "name", "state", "hyperv_version", "cpu_vendor"]


class ClusterSharedVolumeFilter(filters.FilterSet):
    cluster = filters.NumberFilter(field_name="cluster_id")
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = ClusterSharedVolume
        fields = ["cluster", "name", "state"]


class VirtualMachineFilter(filters.FilterSet):
    host = filters.NumberFilter(field_name="host_id")
    cluster = filters.NumberFilter(field_name="host__cluster_id")
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = VirtualMachine
        fields = [
            "host",
            "cluster",
            "name",
            "power_state",
            "highly_available",
            "automatic_start_action",
            "workload_profile",
        ]
