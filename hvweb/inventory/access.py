"""Who may see and act on what: the one helper every entry point goes through.

A member's role in a team grants actions on that team's objects:

* viewer – ``view``;
* operator – also ``operate`` (start and cancel migrations, drain hosts,
  configure HA);
* administrator – also ``administer`` (edit the inventory in the admin).

Outside one's teams, objects do not exist: views look them up through
:func:`restrict` and answer 404. Superusers see and do everything.

Callers write ``Model.objects.restrict(user, action)``
(:class:`hvweb.inventory.querysets.RestrictedQuerySet`), which applies
:func:`restrict`. This module imports no model, so the models' managers can
use it.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404

from .choices import Role

Action = Literal["view", "operate", "administer"]
ACTIONS: tuple[Action, ...] = ("view", "operate", "administer")

#: The roles that grant each action.
ROLES_FOR: dict[str, tuple[str, ...]] = {
    "view": (Role.VIEWER, Role.OPERATOR, Role.ADMINISTRATOR),
    "operate": (Role.OPERATOR, Role.ADMINISTRATOR),
    "administer": (Role.ADMINISTRATOR,),
}

M = TypeVar("M", bound=models.Model)


def team_ids(user, action: Action = "view") -> QuerySet:
    """Ids of the teams in which ``user`` may take ``action`` (a subquery)."""
    if action not in ROLES_FOR:
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
    return user.memberships.filter(role__in=ROLES_FOR[action]).values("team_id")


def restrict(queryset: QuerySet[M], user, action: Action = "view") -> QuerySet[M]:
    """``queryset`` narrowed to the objects ``user`` may take ``action`` on.

    The model says how it reaches its team with a ``team_path`` attribute
    (``""`` for Team itself).
    """
    if action not in ROLES_FOR:
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
    if user is None or not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser:
        return queryset
    path = queryset.model.team_path  # type: ignore[attr-defined]
    lookup = f"{path}__in" if path else "pk__in"
    return queryset.filter(**{lookup: team_ids(user, action)})


def may(user, action: Action, obj: models.Model) -> bool:
    """Whether ``user`` may take ``action`` on ``obj``."""
    return restrict(type(obj)._default_manager.filter(pk=obj.pk), user, action).exists()


def has_role_anywhere(user, action: Action) -> bool:
    """Whether ``user`` may take ``action`` in at least one team."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or team_ids(user, action).exists()


def get_visible_or_404(queryset: QuerySet[M], user, **lookup) -> M:
    """The one object ``user`` may see, else 404 (whether or not it exists)."""
    try:
        return restrict(queryset, user, "view").get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404("No such object.") from None


def get_to_act_on(
    queryset: QuerySet[M], user, action: Action, refusal: str, **lookup
) -> M:
    """The one object ``user`` may see (else 404) and take ``action`` on.

    Seeing it without the role is a 403 whose message is ``refusal`` (the
    role the action needs).
    """
    obj = get_visible_or_404(queryset, user, **lookup)
    if not may(user, action, obj):
        raise PermissionDenied(refusal)
    return obj
