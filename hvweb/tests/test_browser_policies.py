"""Convergence policies in Chromium: advice to a throttled move, and a replay.

daphne serves the ASGI app and a real Celery worker runs the moves and the
replays, as in ``test_browser_dashboard``.
"""

from __future__ import annotations

import pytest

from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.models import Migration
from hvweb.moves.services import start_migration
from hvweb.tests.test_browser_dashboard import log_in, shot, wait_for
from hvweb.tests.test_moves import finished
from hvweb.tests.test_policies import throttle_wins

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    w = make_world()
    w.operator = make_member(w.team, "operator")
    return w


def test_advice_starts_the_recommended_throttled_move_and_the_throttle_is_drawn(
    world, live_url, celery_worker, page
):
    throttle_wins(world)  # a memory hammer only a throttle brings within limits
    world.cluster.simulation_speed = 10
    world.cluster.save()
    log_in(page, live_url, world.operator.username)
    page.goto(live_url + f"/vms/{world.vm.pk}/")
    table = page.locator("#advice-table")
    assert table.locator("tbody tr").count() == 12
    best = table.locator("tr.recommended")
    assert best.count() == 1
    assert best.get_attribute("data-policy") == "throttle"
    assert best.get_attribute("data-option") == "compression"
    assert "Compression with throttle" in page.locator("#advice-reason").inner_text()
    shot(page, "vm-advice")
    page.locator("#start-recommended").click()
    page.wait_for_url(live_url + "/migrations/*/")
    move = Migration.objects.get(vm=world.vm)
    assert (move.policy, move.performance_option) == ("throttle", "compression")
    assert page.locator("#policy").get_attribute("data-policy") == "throttle"
    wait_for(
        page,
        "Number(document.querySelector('#chart-passes').dataset.throttle) > 0",
        timeout=60_000,
    )
    # The throttle's own trace and axis are on the chart.
    chart = page.locator("#chart-passes")
    assert chart.locator("text.legendtext", has_text="Guest throttle %").count() == 1
    assert chart.locator(".g-y2title", has_text="throttle %").count() == 1
    wait_for(
        page,
        "document.querySelector('#migration').dataset.state === 'succeeded'",
        timeout=90_000,
    )
    shot(page, "migration-throttled")
    throttles = list(move.passes_done.values_list("throttle_pct", flat=True))
    assert max(throttles) >= 20
    cells = page.locator("#passes tbody tr td:nth-child(9)").all_inner_texts()
    assert cells == [f"{t:.0f} %" for t in throttles]


def test_a_replay_with_compression_is_shown_side_by_side_with_the_move(
    world, live_url, celery_worker, page
):
    vm = world.vm
    vm.memory_mib = 64
    vm.workload_profile = "database"
    vm.write_rate = 20_000
    vm.working_set_pages = 8_000
    vm.save()
    move = start_migration(
        world.vm, world.hosts[1], world.operator, speed=0, performance_option="tcpip"
    )
    finished(move)
    log_in(page, live_url, world.operator.username)
    page.goto(live_url + move.get_absolute_url())
    page.locator("#replay-option").select_option("compression")
    page.locator("#replay").click()
    page.wait_for_url(live_url + f"/migrations/{move.pk}/replays/*/")
    page.wait_for_selector('#replay-page[data-drawn="true"]', timeout=60_000)
    replay = move.replays.get()
    assert replay.state == "done" and replay.performance_option == "compression"
    heads = page.locator("#side-by-side thead th").all_inner_texts()
    assert heads[1:] == [f"Move #{move.pk} as it ran", f"Replay #{replay.pk}"]
    option = page.locator('#side-by-side tr[data-row="performance_option"] td')
    assert option.all_inner_texts() == ["tcpip", "compression"]
    sent = page.locator('#side-by-side tr[data-row="bytes"] td').all_inner_texts()
    assert sent[0] != sent[1]  # Compression sends re-sent pages as deltas
    assert replay.result["bytes_sent"] < move.bytes_sent
    # Both moves' passes are overlaid on one chart.
    chart = page.locator("#chart-overlay")
    assert int(chart.get_attribute("data-traces")) >= 4
    assert chart.locator("g.trace.bars").count() == 2
    shot(page, "replay")


def test_an_escalate_abort_reads_as_one_live_with_the_vm_on_its_source(
    world, live_url, celery_worker, page
):
    from hvweb.tests.test_policies import hammer

    hammer(world)  # escalate gives up on this guest at the pass cap
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_url, world.operator.username)
    move = start_migration(
        world.vm, world.hosts[1], world.operator, speed=5, policy="escalate"
    )
    page.goto(live_url + move.get_absolute_url())
    wait_for(
        page,
        "document.querySelector('#migration').dataset.state === 'failed'",
        timeout=90_000,
    )
    assert page.locator("#state").inner_text() == "Aborted: pre-copy did not converge"
    assert page.locator("#vm-location").inner_text() == "HV-BLUE-1 (the source)"
    assert page.locator("#error").inner_text().startswith("NOT_CONVERGING:")
    wait_for(
        page,
        "document.querySelector('#versus [data-row=passes] td:last-child')"
        ".textContent === '5'",
    )
    assert errors == []
    shot(page, "migration-aborted")
