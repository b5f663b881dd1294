"""Moves in the admin: visible to their team, cancelled through the service."""

import pytest

from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.models import Migration
from hvweb.moves.services import start_migration

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def move(unworked_queue):
    world = make_world()
    operator = make_member(world.team, "operator")
    migration = start_migration(world.vm, world.hosts[1], operator, speed=0)
    migration.world = world
    return migration


def changelist_ids(client, user) -> list[str]:
    client.force_login(user)
    response = client.get("/admin/moves/migration/")
    assert response.status_code == 200
    return [m.pk for m in response.context["cl"].result_list]


def test_members_see_their_teams_moves_and_others_get_404(client, move):
    viewer = make_member(move.world.team, "viewer")
    assert changelist_ids(client, viewer) == [move.pk]
    assert client.get(f"/admin/moves/migration/{move.pk}/change/").status_code == 200
    stranger = make_member(make_world("RED").team, "administrator")
    assert changelist_ids(client, stranger) == []
    assert client.get(f"/admin/moves/migration/{move.pk}/change/").status_code == 404


@pytest.mark.parametrize(
    ("role", "offered", "cancelled"),
    [("viewer", False, False), ("operator", True, True), ("administrator", True, True)],
)
def test_cancel_action_by_role(client, move, role, offered, cancelled):
    user = make_member(move.world.team, role, f"{role}-x")
    client.force_login(user)
    page = client.get("/admin/moves/migration/")
    assert ('value="cancel_moves"' in page.content.decode()) is offered
    client.post(
        "/admin/moves/migration/",
        {"action": "cancel_moves", "_selected_action": [move.pk]},
    )
    move.refresh_from_db()
    # No worker has taken the move (its queue is not read): it ends at once.
    assert (move.state == "cancelled") is cancelled
    assert move.events.filter(kind="cancelled").exists() is cancelled


def test_moves_cannot_be_added_or_edited_in_the_admin(client, move):
    admin_user = make_member(move.world.team, "administrator", "boss")
    client.force_login(admin_user)
    assert client.get("/admin/moves/migration/add/").status_code == 403
    client.post(f"/admin/moves/migration/{move.pk}/change/", {"state": "succeeded"})
    assert Migration.objects.get(pk=move.pk).state == "running"
