"""A VM on a host marked down is not live-migrated, whichever way it is asked.

The rule is ``SOURCE_DOWN`` in :mod:`migrator.rules` (an operational check);
the API, the VM page, the CLI, ``readiness --now`` and a drain all reach it
through :mod:`hvweb.moves.capacity`.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from hvweb.api.testing import token_client
from hvweb.inventory.models import Host
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.models import Migration
from hvweb.moves.services import ranked_destinations

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    w = make_world()
    w.vm.memory_mib = 64
    w.vm.save()
    Host.objects.filter(pk=w.hosts[0].pk).update(state="down")
    w.operator = make_member(w.team, "operator")
    return w


def test_the_api_refuses_a_move_off_a_down_host(world, unworked_queue):
    response = token_client(world.operator).post(
        "/api/migrations/",
        {"vm": world.vm.pk, "destination": world.hosts[1].pk},
        format="json",
    )
    assert response.status_code == 409, response.content
    assert [f["code"] for f in response.json()["failures"]] == ["SOURCE_DOWN"]
    assert not Migration.objects.exists()


def test_the_vm_page_ranks_every_destination_blocked_and_refuses_a_post(
    client, world, unworked_queue
):
    vm = type(world.vm).objects.select_related("host__cluster").get(pk=world.vm.pk)
    ranked = ranked_destinations(vm)
    assert ranked and all(d.status == "blocked" for d in ranked)
    assert all("SOURCE_DOWN" in [f.code for f in d.failures] for d in ranked)
    client.force_login(world.operator)
    response = client.post(
        reverse("moves:migrate-vm", args=[world.vm.pk]),
        {"destination": world.hosts[1].pk},
        follow=True,
    )
    assert "SOURCE_DOWN" in response.content.decode()
    assert not Migration.objects.exists()


def test_the_cli_refuses_it_and_readiness_now_says_why(world, unworked_queue):
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("live_migrate", world.vm.name, world.hosts[1].name, stderr=err)
    assert exited.value.code == 3
    assert "SOURCE_DOWN" in err.getvalue()
    out = io.StringIO()
    call_command("readiness", "--vm", world.vm.name, "--now", "--json", stdout=out)
    found = json.loads(out.getvalue())
    text = json.dumps(found)
    assert "SOURCE_DOWN" in text
    assert not Migration.objects.exists()
