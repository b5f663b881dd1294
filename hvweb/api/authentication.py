"""``Authorization: Token <key>``, checked against the stored digests."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from .models import ApiToken


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's token scheme over :class:`ApiToken`: the key is hashed, then looked up."""

    model = ApiToken

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").for_key(key).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (token.user, token)
