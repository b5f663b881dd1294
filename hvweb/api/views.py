"""API views: one restricted queryset per viewset, team roles for acting."""

from __future__ import annotations

from auditlog.context import auditlog_value
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from hvweb.inventory import access, snapshots
from hvweb.inventory.actions import configure_highly_available
from hvweb.inventory.models import (
    Cluster,
    ClusterSharedVolume,
    Host,
    Team,
    VirtualMachine,
)

from . import filters, serializers
from .permissions import TeamRole


def failure_data(failure) -> dict:
    return {
        "code": failure.code,
        "message": failure.message,
        "seed": failure.seed,
        "fields": list(failure.fields),
        "subjects": list(failure.subjects),
        "queueable": failure.queueable,
    }


def boolean_parameter(request, name: str) -> bool:
    """A ``true``/``false`` query parameter, false when absent; else a 400."""
    values = request.query_params.getlist(name)
    if not values:
        return False
    if values in (["true"], ["false"]):
        return values == ["true"]
    raise ValidationError({name: ["Give true or false, once."]})


class TeamScopedMixin:
    """Restricts every lookup to the user's teams; names the role that acts.

    ``write_action`` is the role's action for create, update and delete;
    ``action_roles`` overrides it per extra action.
    """

    permission_classes = [TeamRole]
    write_action: access.Action = "administer"
    action_roles: dict[str, access.Action] = {}

    def required_action(self) -> access.Action:
        return self.action_roles.get(self.action, self.write_action)

    def get_queryset(self):
        return access.restrict(super().get_queryset(), self.request.user, "view")

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        attribute_changes_to(request.user)


def attribute_changes_to(user) -> None:
    """Make ``user`` the actor of the audit entries this request writes.

    auditlog's middleware takes the actor from ``request.user`` before the
    view runs, when a token-authenticated user is still anonymous; DRF has
    authenticated by now. The middleware's context is filled in rather than
    nested inside another ``set_actor()``, whose exit would leave the outer
    one's signal receiver connected.
    """
    if not user.is_authenticated:
        return
    try:
        context = auditlog_value.get()
    except LookupError:
        return
    if context.get("actor") is None:
        context["actor"] = user


class InventoryViewSet(TeamScopedMixin, viewsets.ModelViewSet):
    """Read for team members, write for team administrators."""

    def perform_destroy(self, instance):
        with transaction.atomic():
            instance.delete()


class TeamViewSet(TeamScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The teams you belong to, with your role in each."""

    queryset = Team.objects.all()
    serializer_class = serializers.TeamSerializer
    ordering_fields = ["name"]


class ClusterViewSet(InventoryViewSet):
    """Failover clusters and their live-migration settings."""

    queryset = Cluster.objects.select_related("team")
    serializer_class = serializers.ClusterSerializer
    filterset_class = filters.ClusterFilter
    ordering_fields = ["name", "id"]


class HostViewSet(InventoryViewSet):
    """Hyper-V hosts."""

    queryset = Host.objects.select_related("cluster")
    serializer_class = serializers.HostSerializer
    filterset_class = filters.HostFilter
    ordering_fields = ["name", "id", "memory_mib"]


class ClusterSharedVolumeViewSet(InventoryViewSet):
    """Cluster Shared Volumes."""

    queryset = ClusterSharedVolume.objects.select_related("cluster", "owner")
    serializer_class = serializers.ClusterSharedVolumeSerializer
    filterset_class = filters.ClusterSharedVolumeFilter
    ordering_fields = ["name", "id"]


class VirtualMachineViewSet(InventoryViewSet):
    """Virtual machines, their readiness to move, and "Configure as HA"."""

    queryset = VirtualMachine.objects.select_related("host__cluster").prefetch_related(
        "disks", "adapters"
    )
    serializer_class = serializers.VirtualMachineSerializer
    filterset_class = filters.VirtualMachineFilter
    ordering_fields = ["name", "id", "memory_mib"]
    action_roles = {"configure_ha": "operate"}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "operational",
                OpenApiTypes.BOOL,
                description="Also evaluate the checks for starting a move now "
                "(destination up, free memory, no other move of the VM, ...).",
            )
        ],
        responses=serializers.ReadinessSerializer,
        filters=False,
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def readiness(self, request, pk=None):
        """The VM against every other host of its cluster: each failing rule."""
        vm = self.get_object()
        operational = boolean_parameter(request, "operational")
        results = snapshots.readiness([vm], operational=operational)
        body = {
            "vm": vm.pk,
            "source": {"id": vm.host_id, "name": vm.host.name},
            "operational": operational,
            "ready_hosts": sum(r.ok for r in results),
            "candidates": len(results),
            "destinations": [
                {
                    "host": {"id": r.destination.pk, "name": r.destination.name},
                    "ready": r.ok,
                    "failures": [failure_data(f) for f in r.failures],
                }
                for r in results
            ],
        }
        return Response(body)

    @extend_schema(request=None, responses=serializers.HAOutcomeSerializer)
    @action(detail=True, methods=["post"], url_path="configure-ha")
    def configure_ha(self, request, pk=None):
        """Mark the VM highly available, or say which rules refuse it (409)."""
        vm = self.get_object()
        (outcome,) = configure_highly_available([vm])
        body = {
            "vm": vm.pk,
            "configured": outcome.configured,
            "already": outcome.already,
            "highly_available": outcome.configured or outcome.already,
            "failures": [failure_data(f) for f in outcome.failures],
        }
        return Response(body, status=409 if outcome.failures else 200)
