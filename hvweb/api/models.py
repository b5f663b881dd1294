"""API tokens, stored as a digest: the key itself is shown once and never kept.

A key is 32 random bytes (``secrets.token_urlsafe``); the database holds its
SHA-256 and its first characters (the prefix, which the admin and the CLI show
so that a person can tell tokens apart). A stolen database file then gives no
working token. The key has 256 bits of entropy, so a fast unsalted digest is
enough: there is nothing to guess as with a password.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

__all__ = ["ApiToken", "digest"]

#: Characters of the key kept in clear, to name a token.
PREFIX_LENGTH = 8


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def issue(self, user) -> tuple[ApiToken, str]:
        """A new token for ``user`` and its key (the only time it is seen)."""
        key = secrets.token_urlsafe(32)
        token = self.create(user=user, prefix=key[:PREFIX_LENGTH], digest=digest(key))
        return token, key

    def for_key(self, key: str):
        return self.filter(digest=digest(key))


class ApiToken(models.Model):
    """A script's credential for one user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    prefix = models.CharField(max_length=PREFIX_LENGTH, editable=False)
    digest = models.CharField(
        "SHA-256 of the key", max_length=64, unique=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"
        ordering = ["user", "-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
