"""Query filters for the inventory's list endpoints, strict about what they accept.

The strict base (``hvweb.core.filtersets``) refuses an empty value, a
parameter given twice or a malformed one with a 400 naming the parameter.
Related objects are filtered by id with integer filters, so that a missing id
and another team's id answer alike (an empty page). The moves' filters are
``hvweb.moves.filtersets.MigrationFilterSet``, shared with the history page.
"""

from __future__ import annotations

from django_filters import rest_framework as filters

from hvweb.core.filtersets import IdFilter, StrictFilterSet
from hvweb.inventory.models import Cluster, ClusterSharedVolume, Host, VirtualMachine


class ClusterFilter(StrictFilterSet):
    team = IdFilter(field_name="team_id")
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Cluster
        fields = ["team", "name", "storage_kind", "performance_option"]


class HostFilter(StrictFilterSet):
    cluster = IdFilter(field_name="cluster_id")
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Host
        fields = ["cluster", "name", "state", "hyperv_version", "cpu_vendor"]


class ClusterSharedVolumeFilter(StrictFilterSet):
    cluster = IdFilter(field_name="cluster_id")
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = ClusterSharedVolume
        fields = ["cluster", "name", "state"]


class VirtualMachineFilter(StrictFilterSet):
    host = IdFilter(field_name="host_id")
    cluster = IdFilter(field_name="host__cluster_id")
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
