"""API tokens for scripts: trade a user name and password for a token.

Each ``POST`` issues a new token and shows its key this once: the database
keeps only its digest (:mod:`hvweb.api.models`). ``DELETE`` revokes the token
that authenticates it (with a session: every token of the user).

The password check goes through ``authenticate(request=...)``, so django-axes
counts failures and locks the user name and address out (429) exactly as on
the login page; each failure is in the admin's access-failure log.
"""

from __future__ import annotations

from auditlog.context import set_actor
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import ApiToken


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        read_only=True, help_text="The key: shown this once, never stored."
    )
    prefix = serializers.CharField(
        read_only=True, help_text="Its first characters, as the admin shows them."
    )
    username = serializers.CharField(read_only=True)


class TokenView(APIView):
    """``POST`` credentials for your token; ``DELETE`` to revoke it."""

    serializer_class = AuthTokenSerializer

    def get_permissions(self):
        request = getattr(self, "request", None)
        if request is not None and request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_authenticators(self):
        # Logging in uses no session (so needs no CSRF token) and no old token.
        # Django's View.setup() has set self.request by now.
        request = getattr(self, "request", None)
        if request is not None and request.method == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(
        request=AuthTokenSerializer, responses={200: TokenSerializer}, auth=[]
    )
    def post(self, request):
        serializer = AuthTokenSerializer(
            data=request.data, context={"request": request}
        )
        if not serializer.is_valid():
            if getattr(request, "axes_locked_out", False):
                raise Throttled(
                    detail="Too many failed logins for this user from this "
                    "address: try again later."
                )
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        user = serializer.validated_data["user"]
        with set_actor(user):  # no session yet: the audit names who asked
            token, key = ApiToken.objects.issue(user)
        return Response(
            {"token": key, "prefix": token.prefix, "username": user.get_username()}
        )

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        with set_actor(request.user):  # a token's user is known only by now
            if isinstance(request.auth, ApiToken):
                request.auth.delete()
            else:
                ApiToken.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
