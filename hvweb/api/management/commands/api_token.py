"""``manage.py api_token create|list|revoke``: API tokens from the command line.

``create USER`` prints the new key once (it is stored as a digest); ``list``
shows each token's prefix, owner and age; ``revoke PREFIX`` deletes the tokens
whose key starts with PREFIX.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from hvweb.api.models import ApiToken
from hvweb.audit.context import AuditedCommand


class Command(AuditedCommand):
    help = "Create, list or revoke API tokens (keys are shown once, at creation)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="issue a token for a user")
        create.add_argument("username")
        sub.add_parser("list", help="every token's prefix, user and creation time")
        revoke = sub.add_parser("revoke", help="delete tokens by their prefix")
        revoke.add_argument("prefix")

    def handle(self, *args, verb, **options):
        if verb == "create":
            User = get_user_model()
            try:
                user = User._default_manager.get_by_natural_key(options["username"])
            except User.DoesNotExist:
                raise CommandError(
                    f"username: no user named {options['username']!r}"
                ) from None
            token, key = ApiToken.objects.issue(user)
            self.stdout.write(key)
            self.stderr.write(
                f"Token {token.prefix}… for {user}: the key above is shown this "
                "once; only its digest is stored."
            )
        elif verb == "list":
            for token in ApiToken.objects.select_related("user"):
                self.stdout.write(
                    f"{token.prefix}…  {token.user}  {token.created_at:%Y-%m-%d %H:%M}"
                )
        else:
            prefix = options["prefix"].rstrip("…")
            if len(prefix) < 4:
                raise CommandError("prefix: give at least 4 characters")
            count, _ = ApiToken.objects.filter(prefix__startswith=prefix).delete()
            if not count:
                raise CommandError(f"prefix: no token starts with {prefix!r}")
            self.stdout.write(f"Revoked {count} token(s).")
