"""No object of another team is reachable by id through any API route.

Every route that takes an id is tried, with every method it answers, by an
administrator of another team: each answers 404 (never 403, which would
confirm the object exists) and leaves the object as it was. A last test holds
this list equal to the routes the URLconf really has, so a new route cannot
be forgotten here.
"""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict
from django.urls import get_resolver

from hvweb.api.testing import token_client
from hvweb.inventory.testing import make_member, make_world
from hvweb.maintenance.models import MaintenanceRun
from hvweb.moves.models import Replay
from hvweb.moves.services import start_migration
from hvweb.webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

#: (route name, method) for every API route that takes an object's id.
ROUTES = [
    ("team-detail", "get"),
    ("cluster-detail", "get"),
    ("cluster-detail", "put"),
    ("cluster-detail", "patch"),
    ("cluster-detail", "delete"),
    ("cluster-maintenance", "post"),
    ("cluster-balance", "post"),
    ("host-detail", "get"),
    ("host-detail", "put"),
    ("host-detail", "patch"),
    ("host-detail", "delete"),
    ("host-drain", "post"),
    ("host-resume", "post"),
    ("csv-detail", "get"),
    ("csv-detail", "put"),
    ("csv-detail", "patch"),
    ("csv-detail", "delete"),
    ("vm-detail", "get"),
    ("vm-detail", "put"),
    ("vm-detail", "patch"),
    ("vm-detail", "delete"),
    ("vm-readiness", "get"),
    ("vm-advice", "get"),
    ("vm-configure-ha", "post"),
    ("migration-detail", "get"),
    ("migration-cancel", "post"),
    ("migration-replay", "post"),
    ("migration-replays", "get"),
    ("migration-replay-detail", "get"),
    ("webhook-detail", "get"),
    ("webhook-detail", "put"),
    ("webhook-detail", "patch"),
    ("webhook-detail", "delete"),
    ("webhook-deliveries", "get"),
    ("run-detail", "get"),
    ("run-cancel", "post"),
]

URLS = {
    "team": "/api/teams/{}/",
    "cluster": "/api/clusters/{}/",
    "host": "/api/hosts/{}/",
    "csv": "/api/csvs/{}/",
    "vm": "/api/vms/{}/",
    "migration": "/api/migrations/{}/",
    "webhook": "/api/webhooks/{}/",
    "run": "/api/maintenance-runs/{}/",
}
SUFFIXES = {
    "detail": "",
    "readiness": "readiness/",
    "configure-ha": "configure-ha/",
    "cancel": "cancel/",
    "drain": "drain/",
    "resume": "resume/",
    "advice": "advice/",
    "replay": "replay/",
    "replays": "replays/",
    "replay-detail": "replays/{replay}/",
    "deliveries": "deliveries/",
    "maintenance": "maintenance/",
    "balance": "balance/",
}


def target(world, basename):
    if basename == "migration":
        return world.migration
    if basename == "webhook":
        return world.webhook
    if basename == "run":
        return world.run
    return {
        "team": world.team,
        "cluster": world.cluster,
        "host": world.hosts[0],
        "csv": world.csv,
        "vm": world.vm,
    }[basename]


def world_with_a_move(prefix):
    world = make_world(prefix)
    world.migration = start_migration(world.vm, world.hosts[1], None, speed=0)
    Replay.objects.create(
        migration=world.migration, policy="throttle", performance_option="tcpip",
        link_bandwidth_mbps=1000, downtime_limit_ms=300,
    )  # fmt: skip
    world.webhook = Endpoint.objects.create(
        team=world.team, url="https://93.184.215.14/hook", events=["migration.failed"]
    )
    world.run = MaintenanceRun.objects.create(
        cluster=world.cluster, hosts=[h.pk for h in world.hosts], state="failed"
    )
    return world


def url_for(name: str, pk: int) -> str:
    basename, _, suffix = name.partition("-")
    replay = Replay.objects.filter(migration_id=pk).values_list("pk", flat=True)
    return URLS[basename].format(pk) + SUFFIXES[suffix].format(
        replay=replay.first() if basename == "migration" else None
    )


def snapshot(obj):
    return model_to_dict(type(obj).objects.get(pk=obj.pk))


def body_for(obj) -> dict:
    """A body that would be a valid change for the object's own team."""
    data = {k: v for k, v in model_to_dict(obj).items() if k != "id"}
    data.update(name=f"{getattr(obj, 'name', 'x')}-renamed")
    return data


@pytest.mark.usefixtures("unworked_queue")
@pytest.mark.parametrize(("name", "method"), ROUTES)
def test_another_teams_object_is_404_on_every_route(name, method):
    blue, red = world_with_a_move("BLUE"), world_with_a_move("RED")
    client = token_client(make_member(blue.team, "administrator"))
    obj = target(red, name.partition("-")[0])
    before = snapshot(obj)
    kwargs = {"format": "json"} if method in ("put", "patch", "post") else {}
    if kwargs:
        kwargs["data"] = body_for(obj)
    response = getattr(client, method)(url_for(name, obj.pk), **kwargs)
    assert response.status_code == 404, response.content
    assert snapshot(obj) == before
    # The same route answers for the user's own object, so the 404 is isolation.
    own = target(blue, name.partition("-")[0])
    if method == "get":
        assert client.get(url_for(name, own.pk)).status_code == 200


def test_a_missing_id_and_another_teams_id_answer_alike():
    blue, red = make_world("BLUE"), make_world("RED")
    client = token_client(make_member(blue.team, "administrator"))
    hidden = client.get(f"/api/vms/{red.vm.pk}/")
    missing = client.get("/api/vms/999999/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


def _api_routes_with_ids():
    def walk(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns)
            else:
                yield pattern

    for pattern in walk(get_resolver().url_patterns):
        actions = getattr(pattern.callback, "actions", None)
        if actions and "<pk>" in str(pattern.pattern):
            for method in actions:
                if method != "head":  # HEAD is GET without the body
                    yield pattern.name, method


def test_the_list_above_covers_every_api_route_that_takes_an_id():
    assert sorted(set(_api_routes_with_ids())) == sorted(ROUTES)
