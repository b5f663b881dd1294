"""The first pages: login, clusters, a cluster, a host, a VM and its matrix."""

import html

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from hvweb.inventory.models import Host, VirtualMachine
from hvweb.inventory.testing import make_host, make_member, make_vm, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def other():
    return make_world("RED")


def page(client, url, **kwargs):
    response = client.get(url, **kwargs)
    return response, html.unescape(response.content.decode())


# --- Login and logout ----------------------------------------------------------------


def test_pages_send_an_anonymous_visitor_to_the_login_page(client, world):
    for url in ("/", world.cluster.get_absolute_url(), world.vm.get_absolute_url()):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_logging_in_leads_to_the_clusters_and_logging_out_ends_the_session(
    client, world
):
    make_member(world.team, "viewer", "alice", staff=False)
    response = client.post(
        reverse("login"), {"username": "alice", "password": "pw"}, follow=True
    )
    assert response.status_code == 200
    assert "CLU-BLUE" in response.content.decode()
    client.post(reverse("logout"))
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused(client, world):
    make_member(world.team, "viewer", "alice")
    response = client.post(reverse("login"), {"username": "alice", "password": "no"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


# --- Clusters, hosts, VMs ------------------------------------------------------------


def test_the_cluster_list_shows_only_ones_teams_clusters(client, world, other):
    client.force_login(make_member(world.team, "viewer"))
    response, body = page(client, "/")
    assert [c.name for c in response.context["clusters"]] == ["CLU-BLUE"]
    assert "CLU-RED" not in body


def test_the_cluster_page_shows_hosts_with_their_vms_and_memory_in_use(client, world):
    make_vm(world.hosts[0], "blue-db-1", csv=world.csv, memory_mib=2048)
    make_vm(world.hosts[0], "blue-off-1", csv=world.csv, power_state="off")
    client.force_login(make_member(world.team, "viewer"))
    response, body = page(client, world.cluster.get_absolute_url())
    assert response.status_code == 200
    rows = {row["host"].name: row for row in response.context["host_rows"]}
    assert [vm.name for vm in rows["HV-BLUE-1"]["vms"]] == [
        "blue-db-1",
        "blue-off-1",
        "blue-web-1",
    ]
    assert rows["HV-BLUE-1"]["memory_in_use_mib"] == 1024 + 2048  # not the one off
    assert "3072 of 16384 MiB" in body
    assert rows["HV-BLUE-2"]["vms"] == []


def test_the_host_page_shows_its_vms(client, world):
    client.force_login(make_member(world.team, "viewer"))
    response, body = page(client, world.hosts[0].get_absolute_url())
    assert response.status_code == 200
    assert "blue-web-1" in body and "1024 of 16384 MiB" in body


def test_the_vm_page_shows_a_readiness_matrix_of_rules_by_host(client, world):
    make_host(world.cluster, "HV-BLUE-AMD", cpu_vendor="amd")
    client.force_login(make_member(world.team, "viewer"))
    response, body = page(client, world.vm.get_absolute_url())
    assert response.status_code == 200
    matrix = response.context["matrix"]
    assert [row["rule"].code for row in matrix] == [
        "HYPERV_VERSION",
        "FAILOVER_CLUSTER",
        "SHARED_STORAGE",
        "CPU_VENDOR",
        "HIGHLY_AVAILABLE",
        "AUTO_START_ACTION",
        "BOOT_DRIVE",
    ]
    cells = {
        (row["rule"].code, host.name): failure
        for row in matrix
        for host, failure in row["cells"]
    }
    assert {host for _, host in cells} == {"HV-BLUE-2", "HV-BLUE-3", "HV-BLUE-AMD"}
    failing = {key for key, failure in cells.items() if failure}
    assert failing == {("CPU_VENDOR", "HV-BLUE-AMD")}
    assert (
        '<td class="fail" data-host="HV-BLUE-AMD">HV-BLUE-1 has an Intel processor '
        "and HV-BLUE-AMD an AMD one"
    ) in body
    assert body.count('<td class="pass"') == 7 * 3 - 1
    assert response.context["ready_hosts"] == 2


# --- "Configure as highly available" on the VM page: the role trio -------------------


def configure(client, vm):
    return client.post(reverse("inventory:vm-configure-ha", args=[vm.pk]))


@pytest.fixture
def plain_vm(world):
    return make_vm(world.hosts[1], "plain-1", csv=world.csv, highly_available=False)


def test_a_viewer_is_refused_configuring_ha_and_sees_no_button(client, world, plain_vm):
    client.force_login(make_member(world.team, "viewer"))
    _, body = page(client, plain_vm.get_absolute_url())
    assert "Configure as highly available" not in body
    assert configure(client, plain_vm).status_code == 403
    assert not VirtualMachine.objects.get(pk=plain_vm.pk).highly_available


@pytest.mark.parametrize("role", ["operator", "administrator"])
def test_operators_and_administrators_configure_ha(client, world, plain_vm, role):
    client.force_login(make_member(world.team, role))
    _, body = page(client, plain_vm.get_absolute_url())
    assert 'id="configure-ha"' in body
    response = configure(client, plain_vm)
    assert response.status_code == 302
    assert response["Location"] == plain_vm.get_absolute_url()
    assert VirtualMachine.objects.get(pk=plain_vm.pk).highly_available
    _, after = page(client, plain_vm.get_absolute_url())
    assert "plain-1 is now highly available." in after


def test_configuring_ha_reports_every_rule_that_blocks_it(client, world):
    vm = make_vm(
        world.hosts[1],
        "blocked-1",
        csv=None,
        highly_available=False,
        automatic_start_action="start_if_running",
    )
    client.force_login(make_member(world.team, "operator"))
    response = client.post(
        reverse("inventory:vm-configure-ha", args=[vm.pk]), follow=True
    )
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("blocked-1 was not configured as highly available.")
    assert "HIGHLY_AVAILABLE: Disk blocked-1.vhdx" in message
    assert "AUTO_START_ACTION: blocked-1's Automatic Start Action" in message
    assert not VirtualMachine.objects.get(pk=vm.pk).highly_available


def test_configuring_ha_needs_a_post(client, world, plain_vm):
    client.force_login(make_member(world.team, "operator"))
    url = reverse("inventory:vm-configure-ha", args=[plain_vm.pk])
    assert client.get(url).status_code == 405


# --- Team isolation on the pages -----------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator", "administrator"])
def test_another_teams_cluster_host_and_vm_are_404(client, world, other, role):
    client.force_login(make_member(world.team, role))
    for url in (
        other.cluster.get_absolute_url(),
        other.hosts[0].get_absolute_url(),
        other.vm.get_absolute_url(),
    ):
        assert client.get(url).status_code == 404, url
    assert configure(client, other.vm).status_code == 404
    # The same pages of one's own team answer.
    assert client.get(world.vm.get_absolute_url()).status_code == 200


def test_a_user_without_a_team_sees_no_cluster(client, world):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("nobody", password="pw"))
    response, body = page(client, "/")
    assert list(response.context["clusters"]) == []
    assert client.get(world.cluster.get_absolute_url()).status_code == 404


def test_a_nonexistent_object_is_404_too(client, world):
    client.force_login(make_member(world.team, "viewer"))
    assert client.get(reverse("inventory:vm", args=[999999])).status_code == 404


# --- Host cards say whether the host can take VMs ------------------------------------


def test_each_host_card_says_whether_it_can_take_vms_and_which_rule_stops_it(client):
    call_command("seed_demo", verbosity=0)
    client.force_login(get_user_model().objects.get(username="demo-viewer"))
    _, body = page(client, "/")
    expected = {
        "HV-LAB-1": "yes",
        "HV-LAB-2": "yes",
        "HV-LAB-2008": "HYPERV_VERSION",
        "HV-LAB-NOTJOINED": "FAILOVER_CLUSTER",
        "HV-LAB-NOSAN": "SHARED_STORAGE",
        "HV-LAB-AMD": "CPU_VENDOR",
        "HV-LAB-DBOOT": "BOOT_DRIVE",
    }
    for name, says in expected.items():
        host = Host.objects.get(name=name)
        card = body[body.index(f'id="host-{host.pk}"') :]
        card = card[: card.index("</article>")]
        takes = card[card.index('class="takes') :]
        takes = takes[: takes.index("</p>")]
        if says == "yes":
            assert 'data-takes="yes"' in takes and "Can take VMs" in takes, name
        else:
            assert 'data-takes="no"' in takes and "Takes no VM now" in takes, name
            assert takes.count(f">{says}</code>") == 1, (name, takes)  # once


def test_host_cards_escape_names_and_say_when_there_is_nothing_to_take(client):
    """The cards are drawn in Python (views._host_card): a name is escaped, a
    host breaking many rules names two and says there are more, and a
    cluster's only host has no VM elsewhere to take."""
    lone = make_world("LONE", hosts=1)
    world = make_world()
    odd = Host.objects.create(  # rows the admin would refuse, as an import may hold
        cluster=world.cluster, name="HV-<b>ODD", hyperv_version="2008 R2",
        cpu_vendor="amd", boot_drive="D", memory_mib=512,
        shared_storage_connected=False, cluster_node=False, state="paused",
    )  # fmt: skip
    client.force_login(make_member(world.team, "viewer"))
    body = client.get("/").content.decode()  # as sent, not unescaped
    card = body[body.index(f'id="host-{odd.pk}"') :]
    card = card[: card.index("</article>")]
    assert "HV-&lt;b&gt;ODD" in card and "<b>ODD" not in card
    assert 'class="tag state-paused">Paused (drained)<' in card
    assert 'data-takes="no"' in card and card.count('class="rule-code"') == 2
    assert " and more</p>" in card
    assert 'class="takes-why muted small"' in card

    client.force_login(make_member(lone.team, "viewer"))
    _, body = page(client, "/")
    assert 'data-takes="none">No VM elsewhere in its cluster to take.' in body
