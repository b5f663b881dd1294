"""Query filters for the list endpoints, strict about what they accept.

Related objects are filtered by id with integer filters, not choice filters: a
choice filter would answer "not a valid choice" for an id that does not exist
and an empty page for another team's, telling the two apart.

django-filter forgives much that the schema forbids (an empty value, a
parameter given twice, ``highly_available=maybe``, an id of 1e300 that
overflows the database's integer); here each is a 400 naming the parameter.
"""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters

from hvweb.inventory.models import Cluster, ClusterSharedVolume, Host, VirtualMachine
from hvweb.moves.models import Migration

#: The largest id the database stores (a signed 64-bit integer).
MAX_ID = 2**63 - 1


class IdFilter(filters.NumberFilter):
    """An object's id: a whole number the database can hold."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictFilterSet(filters.FilterSet):
    def is_valid(self) -> bool:
        form = self.form
        for name, filter_ in self.filters.items():
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else []
            if len(values) > 1:
                form.add_error(name, "Give this parameter once.")
            elif values == [""]:
                form.add_error(name, "Give a value, or leave the parameter out.")
            elif values and isinstance(filter_, filters.BooleanFilter):
                if values[0] not in ("true", "false"):
                    form.add_error(name, "Give true or false.")
        return super().is_valid()


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


class MigrationFilter(StrictFilterSet):
    vm = IdFilter(field_name="vm_id")
    cluster = IdFilter(field_name="cluster_id")
    source = IdFilter(field_name="source_id")
    destination = IdFilter(field_name="destination_id")
    created_after = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte"
    )
    created_before = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt"
    )

    class Meta:
        model = Migration
        fields = ["vm", "cluster", "source", "destination", "state"]
