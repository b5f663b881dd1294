"""A host's compression rate (issue 11, item 1): how much page data its spare
CPU delta-encodes a second, a setting of the host that the engine and the
predictor follow for every move the host sends under Compression."""

from __future__ import annotations

import pytest

from hvweb.api.testing import token_client
from hvweb.inventory.models import Host
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.runner import build_spec
from migrator.predict import predict
from migrator.spec import DEFAULT_COMPRESSION_BPS

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = make_world()
    vm = world.vm
    # A database guest that re-dirties pages during pass 1, so re-sent pages
    # (the only ones Compression delta-encodes) exist.
    vm.memory_mib, vm.workload_profile = 2048, "database"
    vm.write_rate, vm.working_set_pages = 30_000, 60_000
    vm.save()
    world.cluster.link_bandwidth_mbps = 10_000
    world.cluster.save()
    return world


def prediction(world, option: str):
    source = Host.objects.get(pk=world.vm.host_id)
    return predict(
        build_spec(
            world.vm, source, world.cluster,
            performance_option=option, downtime_limit_ms=300,
        )
    )  # fmt: skip


def test_a_new_host_encodes_at_the_engines_default_rate(world):
    assert world.hosts[0].compression_mbps * 1e6 == DEFAULT_COMPRESSION_BPS


def test_the_source_hosts_rate_decides_what_compression_gains(world):
    tcpip = prediction(world, "tcpip")
    fast = prediction(world, "compression")
    assert fast.bytes_sent < tcpip.bytes_sent  # deltas, not whole pages
    assert fast.total_time_s < tcpip.total_time_s

    # A host whose CPU encodes slower than the move's one TCP connection
    # carries (4 Gbit/s on this 10 Gbit/s link) gains nothing: Hyper-V then
    # sends the pages plain, as under TCP/IP.
    Host.objects.filter(pk=world.vm.host_id).update(compression_mbps=3_000)
    slow = prediction(world, "compression")
    assert (slow.bytes_sent, slow.total_time_s, slow.passes) == (
        tcpip.bytes_sent,
        tcpip.total_time_s,
        tcpip.passes,
    )


def test_an_administrator_sets_it_through_the_api_within_its_bounds(world):
    client = token_client(make_member(world.team, "administrator"))
    host = world.hosts[1]
    url = f"/api/hosts/{host.pk}/"
    assert client.get(url).json()["compression_mbps"] == 12_000
    for bad in (0, 1_000_001, "fast"):
        response = client.patch(url, {"compression_mbps": bad}, format="json")
        assert response.status_code == 400, bad
        assert list(response.json()) == ["compression_mbps"]
    response = client.patch(url, {"compression_mbps": 3_000}, format="json")
    assert response.status_code == 200, response.content
    host.refresh_from_db()
    assert host.compression_mbps == 3_000


def test_the_host_page_says_its_rate(client, world):
    client.force_login(make_member(world.team, "viewer"))
    Host.objects.filter(pk=world.hosts[0].pk).update(compression_mbps=2_500)
    body = client.get(world.hosts[0].get_absolute_url()).content.decode()
    assert "<dt>Compression rate</dt>" in body
    assert "2.5 Gbit/s" in body
