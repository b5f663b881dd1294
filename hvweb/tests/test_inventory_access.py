"""``access.restrict``: what each role may see and do, and nothing of other teams."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from hvweb.inventory import access
from hvweb.inventory.models import (
    Cluster,
    ClusterSharedVolume,
    Host,
    Membership,
    NetworkAdapter,
    Team,
    VirtualDisk,
    VirtualMachine,
)
from hvweb.inventory.testing import make_member, make_world

pytestmark = pytest.mark.django_db

MODELS = [
    Team,
    Membership,
    Cluster,
    Host,
    ClusterSharedVolume,
    VirtualMachine,
    VirtualDisk,
    NetworkAdapter,
]


@pytest.fixture
def worlds():
    return make_world("BLUE"), make_world("RED")


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {"view"}),
        ("operator", {"view", "operate"}),
        ("administrator", {"view", "operate", "administer"}),
    ],
)
def test_each_role_grants_its_actions_on_its_team_only(worlds, role, allowed):
    blue, red = worlds
    user = make_member(blue.team, role)
    for action in access.ACTIONS:
        for model in MODELS:
            seen = access.restrict(model.objects.all(), user, action)
            team_name = f"{model.team_path}__name" if model.team_path else "name"
            if action in allowed:
                assert seen.exists(), (model, action)
                assert not seen.exclude(**{team_name: "Blue"}).exists(), (
                    model,
                    action,
                )
            else:
                assert not seen.exists(), (model, action)
    assert access.may(user, "view", blue.vm) and not access.may(user, "view", red.vm)


def test_anonymous_and_teamless_users_see_nothing_and_superusers_all(worlds):
    teamless = get_user_model().objects.create_user("nobody")
    root = get_user_model().objects.create_superuser("root", "r@example.com", "pw")
    for model in MODELS:
        assert not access.restrict(model.objects.all(), AnonymousUser()).exists()
        assert not access.restrict(model.objects.all(), teamless).exists()
        assert access.restrict(model.objects.all(), root, "administer").count() == (
            model.objects.count()
        )


def test_an_unknown_action_is_an_error(worlds):
    with pytest.raises(ValueError, match="unknown action 'delete'"):
        access.restrict(Cluster.objects.all(), AnonymousUser(), "delete")
