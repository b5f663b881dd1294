"""Helpers for API tests: a client that speaks as a user through a real token."""

from __future__ import annotations

from rest_framework.test import APIClient

from .models import ApiToken


def token_client(user) -> APIClient:
    """An APIClient sending ``Authorization: Token …`` for ``user``."""
    _, key = ApiToken.objects.issue(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
