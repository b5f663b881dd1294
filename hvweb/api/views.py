"""API views: one restricted queryset per viewset, team roles for acting."""

from __future__ import annotations

from auditlog.context import auditlog_value
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import mixins, status, viewsets
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
from hvweb.maintenance.balance import balance_cluster, plan_balance
from hvweb.maintenance.failback import plan_failback, resume_with_failback
from hvweb.maintenance.models import MaintenanceRun
from hvweb.maintenance.plan import plan_drain
from hvweb.maintenance.rolling import (
    RunRefused,
    cancel_run,
    parse_moment,
    plan_run,
    start_run,
)
from hvweb.maintenance.service import drain_and_record
from hvweb.moves.advice import vm_advice
from hvweb.moves.drain import DrainRefused, resume_host
from hvweb.moves.filtersets import MigrationFilterSet
from hvweb.moves.models import Migration
from hvweb.moves.replay import ReplayRefused, request_replay
from hvweb.moves.services import (
    CancelRefused,
    MigrationRefused,
    cancel_migration,
    evaluate_destinations,
    start_migration,
)

from . import filters, serializers
from .permissions import TeamRole


def refusal(
    refused: CancelRefused | DrainRefused | ReplayRefused | RunRefused,
) -> Response:
    """409: the request is well formed, but the object's state refuses it now."""
    return Response(
        serializers.RefusalSerializer(refused).data, status=status.HTTP_409_CONFLICT
    )


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
        return super().get_queryset().restrict(self.request.user, "view")

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
    action_roles = {"maintenance": "operate", "balance": "operate"}

    @extend_schema(
        request=serializers.BalanceSerializer,
        parameters=[
            OpenApiParameter(
                "dry_run", OpenApiTypes.BOOL,
                description="Return the plan and start nothing.",
            )
        ],
        responses={200: serializers.BalancePlanSerializer},
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def balance(self, request, pk=None):
        """Balance the cluster (Node Fairness): the fewest live moves that bring
        every host's memory use under ``level_pct`` (80 by default), each to
        the best host the rules allow that stays under it. With
        ``?dry_run=true`` the timed plan; otherwise the moves start and the
        reply is their plan."""
        cluster = self.get_object()
        dry_run = boolean_parameter(request, "dry_run")
        asked = serializers.BalanceSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        options = dict(asked.validated_data)
        level = options.pop("level_pct")
        if dry_run:
            plan = plan_balance(cluster, level, **options)
        else:
            plan = balance_cluster(cluster, request.user, level, **options)
        return Response(serializers.BalancePlanSerializer(plan).data)

    @extend_schema(
        request=serializers.MaintenanceStartSerializer,
        parameters=[
            OpenApiParameter(
                "dry_run",
                OpenApiTypes.BOOL,
                description="Return the run's timed plan and N-1 check; start nothing.",
            )
        ],
        responses={
            201: serializers.MaintenanceRunSerializer,
            200: OpenApiTypes.OBJECT,
            409: serializers.RefusalSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def maintenance(self, request, pk=None):
        """Start a rolling maintenance run over ``hosts`` (default: all up).

        For each host in turn: drain, hold ``hold_s`` seconds, resume with
        failback. 409 when the cluster cannot carry its running VMs with one
        of the hosts out (N-1, naming hosts and figures), when another run is
        under way, or when a host is down or not in the cluster. With
        ``?dry_run=true``: the timed plan of the whole run, nothing started.
        """
        cluster = self.get_object()
        dry_run = boolean_parameter(request, "dry_run")
        asked = serializers.MaintenanceStartSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        options = dict(asked.validated_data)
        hosts = options.pop("hosts", None)
        hold_s = options.pop("hold_s")
        drain_only = options.pop("drain_only")
        zone = options.pop("time_zone")
        window = {
            "start_at": parse_moment("start_at", options.pop("start_at", None), zone),
            "end_by": parse_moment("end_by", options.pop("end_by", None), zone),
        }
        try:
            if dry_run:
                return Response(
                    plan_run(cluster, hosts, hold_s=hold_s, drain_only=drain_only,
                             **options)
                )  # fmt: skip
            run = start_run(
                cluster, request.user, hosts, hold_s=hold_s, drain_only=drain_only,
                time_zone=zone, **window, **options,
            )  # fmt: skip
        except RunRefused as refused:
            return refusal(refused)
        return Response(
            serializers.MaintenanceRunSerializer(run).data,
            status=status.HTTP_201_CREATED,
        )


class HostViewSet(InventoryViewSet):
    """Hyper-V hosts; operators drain (pause and empty) and resume them."""

    queryset = Host.objects.select_related("cluster")
    serializer_class = serializers.HostSerializer
    filterset_class = filters.HostFilter
    ordering_fields = ["name", "id", "memory_mib"]
    action_roles = {"drain": "operate", "resume": "operate"}

    @extend_schema(
        request=serializers.MoveOptionsSerializer,
        parameters=[
            OpenApiParameter(
                "dry_run",
                OpenApiTypes.BOOL,
                description="Return the timed plan (DrainPlan) and change nothing.",
            )
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="DrainOutcomeOrPlan",
                serializers=[
                    serializers.DrainOutcomeSerializer,
                    serializers.DrainPlanSerializer,
                ],
                resource_type_field_name=None,
            ),
            409: serializers.DrainRefusalSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def drain(self, request, pk=None):
        """Pause the host and move each VM to its best host.

        High priority first, then Medium, Low and No Auto Start (biggest
        first within each), each where the rules allow it now (ready hosts,
        then queued at a host's limit; most free memory first): live at or
        above the cluster's move type threshold, by quick migration below it
        and for VMs that are off or saved. The options apply to every move.
        VMs no host can take stay, with the failing rules (``complete``
        false). With ``?dry_run=true`` nothing changes and the reply is the
        timed plan: each move's destination, slot, predicted start, end,
        passes and downtime, what stays and why, and the whole window. 409
        when the host is down.
        """
        host = self.get_object()
        dry_run = boolean_parameter(request, "dry_run")
        options = serializers.MoveOptionsSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        try:
            if dry_run:
                plan = plan_drain(host, **options.validated_data)
                return Response(serializers.DrainPlanSerializer(plan).data)
            outcome, _ = drain_and_record(host, request.user, **options.validated_data)
        except DrainRefused as refused:
            return refusal(refused)
        return Response(serializers.DrainOutcomeSerializer(outcome).data)

    @extend_schema(
        request=serializers.ResumeSerializer,
        parameters=[
            OpenApiParameter(
                "dry_run",
                OpenApiTypes.BOOL,
                description="With failback immediate: return the timed plan of "
                "the moves back (DrainPlan) and change nothing.",
            )
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="ResumeOutcome",
                serializers=[
                    serializers.HostSerializer,
                    serializers.FailbackOutcomeSerializer,
                    serializers.DrainPlanSerializer,
                ],
                resource_type_field_name=None,
            ),
            409: serializers.DrainRefusalSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Take the host out of pause: a destination again.

        ``failback``: ``none`` (the default) leaves its VMs where they are and
        returns the host; ``immediate`` also moves back the VMs its last drain
        moved away (in the drain's order, live or quick by the same rule) and
        returns what it started; with ``?dry_run=true`` the timed plan of that
        instead, changing nothing. 409 when the host is down.
        """
        host = self.get_object()
        dry_run = boolean_parameter(request, "dry_run")
        asked = serializers.ResumeSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        options = dict(asked.validated_data)
        failback = options.pop("failback") == "immediate"
        try:
            if failback and dry_run:
                plan = plan_failback(host, **options)
                return Response(serializers.DrainPlanSerializer(plan).data)
            if failback:
                outcome = resume_with_failback(host, request.user, **options)
                return Response(serializers.FailbackOutcomeSerializer(outcome).data)
            if dry_run:
                raise ValidationError(
                    {"dry_run": ["A dry run plans a failback: give failback "
                                 "immediate."]}
                )  # fmt: skip
            host = resume_host(host, request.user)
        except DrainRefused as refused:
            return refusal(refused)
        return Response(self.get_serializer(host).data)


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
        if operational:
            # With the moves under way: reserved memory, busy hosts, this VM's
            # own active move; what starting a move would check now.
            others = vm.host.cluster.hosts.exclude(pk=vm.host_id).order_by("name")
            pairs = [(d.host, d.failures) for d in evaluate_destinations(vm, others)]
        else:
            pairs = [(r.destination, r.failures) for r in snapshots.readiness([vm])]
        readiness = {
            "vm": vm,
            "operational": operational,
            "destinations": [{"host": h, "failures": f} for h, f in pairs],
        }
        return Response(serializers.ReadinessSerializer(readiness).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "downtime_limit_ms",
                OpenApiTypes.INT,
                description="The move's downtime limit (default: a move's, 300).",
            )
        ],
        responses=serializers.AdviceSerializer,
        filters=False,
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def advice(self, request, pk=None):
        """Every convergence policy under every performance option for this VM's
        workload and link, predicted, and the recommended choice with why."""
        vm = self.get_object()
        try:
            advice = vm_advice(
                vm, downtime_limit_ms=request.query_params.get("downtime_limit_ms")
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response(serializers.AdviceSerializer(advice.to_dict()).data)

    @extend_schema(request=None, responses=serializers.HAOutcomeSerializer)
    @action(detail=True, methods=["post"], url_path="configure-ha")
    def configure_ha(self, request, pk=None):
        """Mark the VM highly available, or say which rules refuse it (409)."""
        vm = self.get_object()
        (outcome,) = configure_highly_available([vm])
        return Response(
            serializers.HAOutcomeSerializer(outcome).data,
            status=409 if outcome.failures else 200,
        )


class MaintenanceRunViewSet(TeamScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Rolling maintenance runs: where each is, its plan and journal; cancel."""

    queryset = MaintenanceRun.objects.select_related("cluster")
    serializer_class = serializers.MaintenanceRunSerializer
    ordering_fields = ["id", "created_at"]
    action_roles = {"cancel": "operate"}

    @extend_schema(
        request=None,
        responses={
            200: serializers.MaintenanceRunSerializer,
            409: serializers.RefusalSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop the run once the host in hand is resumed with its VMs back."""
        run = self.get_object()
        try:
            run = cancel_run(run, request.user.get_username())
        except RunRefused as refused:
            return refusal(refused)
        return Response(self.get_serializer(run).data)


class MigrationViewSet(
    TeamScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Live migrations: list, detail with stages and passes, start, cancel.

    Starting and cancelling need the operator (or administrator) role in the
    VM's team; the orchestration's services check every rule.
    """

    queryset = Migration.objects.select_related(
        "vm", "cluster", "source", "destination", "requested_by"
    )
    filterset_class = MigrationFilterSet
    ordering_fields = ["created_at", "id", "finished_at"]
    write_action = "operate"

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("retrieve", "cancel"):
            queryset = queryset.prefetch_related("stages", "passes_done")
        return queryset

    def get_serializer_class(self):
        if self.action == "create":
            return serializers.MigrationStartSerializer
        if self.action == "list":
            return serializers.MigrationSerializer
        return serializers.MigrationDetailSerializer

    def _detail(self, migration) -> dict:
        migration = self.get_queryset().get(pk=migration.pk)
        return serializers.MigrationDetailSerializer(
            migration, context=self.get_serializer_context()
        ).data

    @extend_schema(
        request=serializers.MigrationStartSerializer,
        examples=[
            OpenApiExample(
                "Move prod-web-1 to HV-PROD-2 (demo inventory)",
                value={"vm": 1, "destination": 2, "speed": 0},
                request_only=True,
            ),
            OpenApiExample(
                "With options",
                value={
                    "vm": 1,
                    "destination": 3,
                    "performance_option": "tcpip",
                    "downtime_limit_ms": 100,
                    "speed": 10,
                },
                request_only=True,
            ),
        ],
        responses={
            201: serializers.MigrationDetailSerializer,
            409: serializers.MigrationRefusalSerializer,
        },
    )
    def create(self, request, *args, **kwargs):
        """Start a move (or queue it at the host's simultaneous-move limit).

        409 when the rules refuse it now, with every failing rule.
        """
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        vm, destination = data.pop("vm"), data.pop("destination")
        if "faults" in data:
            data["faults"] = dict(data["faults"])
        try:
            migration = start_migration(vm, destination, request.user, **data)
        except MigrationRefused as refused:
            return Response(
                serializers.MigrationRefusalSerializer(refused).data,
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            self._detail(migration),
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/migrations/{migration.pk}/"},
        )

    @extend_schema(
        request=serializers.ReplayRequestSerializer,
        responses={
            202: serializers.ReplaySerializer,
            409: serializers.RefusalSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Replay a finished move as a what-if: same VM, workload and seed, other
        settings (policy, performance option, link rate, downtime limit).

        A pure simulation that touches no inventory, run by a worker: the reply
        is the replay queued (202); read it from ``replays/<id>/`` until its
        ``state`` is done. 409 while the move is under way.
        """
        migration = self.get_object()
        asked = serializers.ReplayRequestSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        try:
            replay = request_replay(migration, request.user, **asked.validated_data)
        except ReplayRefused as refused:
            return refusal(refused)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        url = f"/api/migrations/{migration.pk}/replays/{replay.pk}/"
        return Response(
            serializers.ReplaySerializer(replay).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": url},
        )

    @extend_schema(responses=serializers.ReplaySerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def replays(self, request, pk=None):
        """The move's what-if replays, oldest first."""
        migration = self.get_object()
        return Response(
            serializers.ReplaySerializer(migration.replays.all(), many=True).data
        )

    @extend_schema(responses=serializers.ReplaySerializer, filters=False)
    @action(
        detail=True,
        methods=["get"],
        url_path=r"replays/(?P<replay_id>[0-9]+)",
        filter_backends=[],
        pagination_class=None,
    )
    def replay_detail(self, request, pk=None, replay_id=None):
        """One what-if replay of the move."""
        migration = self.get_object()
        replay = get_object_or_404(migration.replays.all(), pk=replay_id)
        return Response(serializers.ReplaySerializer(replay).data)

    @extend_schema(
        request=None,
        responses={
            200: serializers.MigrationDetailSerializer,
            409: serializers.CancelRefusalSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a move: at once if no worker took it, else its worker stops it.

        409 once the VM is paused for the switchover or the move has ended.
        """
        migration = self.get_object()
        try:
            migration = cancel_migration(migration, request.user)
        except CancelRefused as refused:
            return refusal(refused)
        return Response(self._detail(migration))
