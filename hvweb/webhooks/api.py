"""``/api/webhooks/``: a team administrator's endpoints, and their deliveries.

Every lookup goes through ``restrict(user, "administer")``: a team member
without that role, or another team, sees no endpoint (404). Validation is the
model's ``full_clean()`` (``ValidatedModelSerializer``); the secret is
write-only, returned once in the reply that creates the endpoint.
"""

from __future__ import annotations

from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hvweb.api.serializers import ValidatedModelSerializer
from hvweb.api.views import TeamScopedMixin
from hvweb.inventory.models import Team

from .models import EVENTS, Delivery, Endpoint


class EndpointSerializer(ValidatedModelSerializer):
    parent_field = "team"
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=list(EVENTS)), allow_empty=False
    )
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=128
    )

    class Meta:
        model = Endpoint
        fields = ["id", "team", "url", "events", "secret", "active", "created_at"]
        read_only_fields = ["created_at"]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        user = getattr(request, "user", None)
        fields["team"].queryset = Team.objects.restrict(user, "administer")
        return fields

    def create(self, validated_data):
        request = self.context.get("request")
        validated_data["created_by"] = getattr(request, "user", None)
        return super().create(validated_data)

    def update(self, instance, validated_data):
        if not validated_data.get("secret"):  # empty keeps the secret it has
            validated_data.pop("secret", None)
        return super().update(instance, validated_data)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.context.get("show_secret"):
            data["secret"] = instance.secret
        return data


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id", "event", "key", "status", "attempts", "last_status_code",
            "last_error", "created_at", "last_attempt_at", "next_attempt_at",
            "delivered_at", "payload",
        ]  # fmt: skip


class EndpointViewSet(
    TeamScopedMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Webhook endpoints of the teams you administer (the secret is write-only)."""

    queryset = Endpoint.objects.select_related("team")
    serializer_class = EndpointSerializer
    write_action = "administer"

    def get_queryset(self):
        return self.queryset.restrict(self.request.user, "administer")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save()
        shown = EndpointSerializer(
            endpoint, context={**self.get_serializer_context(), "show_secret": True}
        )
        return Response(shown.data, status=201)

    @action(detail=True, methods=["get"], serializer_class=DeliverySerializer)
    def deliveries(self, request, pk=None):
        """The endpoint's deliveries, newest first (status, attempts, last error)."""
        endpoint = self.get_object()
        page = self.paginate_queryset(endpoint.deliveries.all())
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)
