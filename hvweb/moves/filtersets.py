"""The moves' filters: one FilterSet for the history page and ``/api/migrations/``.

NetBox's manner (``virtualization/filtersets.py``): the page (``moves.views``)
and the API (``api.views.MigrationViewSet``) filter through the same class,
so a parameter means the same on both. The page renders some of its fields
as its filter form.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django_filters import rest_framework as filters

from hvweb.core.filtersets import MAX_ID, IdFilter, StrictFilterSet
from hvweb.inventory.choices import MigrationPolicy
from hvweb.inventory.models import Cluster

from .choices import MigrationState
from .models import Migration, MigrationEvent

__all__ = ["PAGE_FILTERS", "MigrationFilterSet"]

#: The filters the history page shows, in its order.
PAGE_FILTERS = (
    "cluster", "vm", "state", "policy", "event_id", "user", "since", "until"
)


def _visible_clusters(request):
    return Cluster.objects.restrict(getattr(request, "user", None))


class VmFilter(filters.CharFilter):
    """A VM: its id (a whole number), or part of its name (any other text)."""

    def filter(self, queryset, value):
        if not value:
            return queryset
        if value.isascii() and value.isdigit():
            return (
                queryset.filter(vm_id=int(value))
                if int(value) <= MAX_ID
                else (queryset.none())
            )
        return queryset.filter(vm__name__icontains=value)


def _day(lookup: str, label: str, help_text: str) -> filters.DateFilter:
    """A day bound on when a move was asked for, with a date picker on pages."""
    return filters.DateFilter(
        field_name="created_at",
        lookup_expr=f"date__{lookup}",
        label=label,
        help_text=help_text,
        widget=forms.DateInput(attrs={"type": "date"}),
    )


class MigrationFilterForm(forms.Form):
    """The filters' form: a date range must not end before it starts."""

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "must be on or after the From date.")
        return data


class MigrationFilterSet(StrictFilterSet):
    """Moves by cluster, VM, hosts, state, policy, Hyper-V event ID, requester
    and when they were asked for.

    ``cluster`` is one of the user's clusters (any other id, existing or not,
    is refused alike: "Select a valid choice"); ``source`` and
    ``destination`` are host ids (another team's gives nothing, like a
    missing one).
    """

    cluster = filters.ModelChoiceFilter(
        queryset=_visible_clusters, label="Cluster", empty_label="Any cluster"
    )
    vm = VmFilter(label="VM", max_length=100, help_text="Its id, or part of its name")
    source = IdFilter(field_name="source_id", label="Source host id")
    destination = IdFilter(field_name="destination_id", label="Destination host id")
    state = filters.ChoiceFilter(
        choices=MigrationState.choices, label="State", empty_label="Any state"
    )
    policy = filters.ChoiceFilter(
        choices=MigrationPolicy.choices,
        label="Policy",
        empty_label="Any policy",
        help_text="The move's convergence policy",
    )
    event_id = filters.ChoiceFilter(
        # As text, like every query parameter: the schema then says a string.
        choices=[
            (str(value), label)
            for value, label in MigrationEvent._meta.get_field("event_id").choices
        ],
        method="filter_event_id",
        label="Hyper-V event ID",
        empty_label="Any event ID",
        help_text="Moves that logged this VMMS-Admin event ID",
    )
    user = filters.CharFilter(
        method="filter_user",
        label="Requested by",
        max_length=150,
        help_text="The requester's username (any case)",
    )
    since = _day("gte", "From", "Requested on or after this day (YYYY-MM-DD)")
    until = _day("lte", "To", "Requested on or before this day (YYYY-MM-DD)")
    created_after = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Requested at or after"
    )
    created_before = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Requested before"
    )

    class Meta:
        model = Migration
        fields = [
            "cluster",
            "vm",
            "source",
            "destination",
            "state",
            "policy",
            "event_id",
            "user",
            "since",
            "until",
            "created_after",
            "created_before",
        ]
        form = MigrationFilterForm

    def filter_event_id(self, queryset, name, value: str):
        logged = MigrationEvent.objects.filter(event_id=int(value)).values(
            "migration_id"
        )
        return queryset.filter(pk__in=logged)

    def filter_user(self, queryset, name, value: str):
        field = get_user_model().USERNAME_FIELD
        return queryset.filter(**{f"requested_by__{field}__iexact": value})
