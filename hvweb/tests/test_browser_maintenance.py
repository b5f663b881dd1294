"""Planned maintenance in Chromium, against the real stack: the drain asks
first with its timed plan, quick migrations and stopped VMs move, the drain is
checked against its plan; rolling maintenance refuses an N-1 failure; the
balance plan shows. At 1280×800 and at phone width."""

from __future__ import annotations

import pytest

from hvweb.inventory.models import Cluster, Host, VirtualMachine
from hvweb.moves.models import Migration
from hvweb.tests.test_browser_dashboard import log_in
from hvweb.tests.test_moves import finished

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    user = get_user_model().objects.get(username="demo-operator")
    user.set_password("pw")
    user.save()


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
def test_pause_and_drain_shows_the_plan_then_the_drain_against_it(
    demo,
    live_url,
    celery_worker,
    browser,
    width,
    height,
):
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    host = Host.objects.get(name="HV-PROD-1")
    VirtualMachine.objects.filter(name="prod-batch-1").update(priority=1000)
    VirtualMachine.objects.filter(name="prod-web-1").update(power_state="off")
    log_in(page, live_url, "demo-operator")
    page.goto(live_url + f"/hosts/{host.pk}/")
    page.locator("#drain").click()
    page.wait_for_selector("#plan-summary")
    assert page.locator("#plan-summary").inner_text().startswith("HV-PROD-1: 3 VMs")
    kinds = {
        row.get_attribute("data-vm"): row.get_attribute("data-kind")
        for row in page.locator("#plan tbody tr").all()
    }
    assert kinds == {
        "prod-db-1": "live",
        "prod-web-1": "quick",
        "prod-batch-1": "quick",
    }
    assert Host.objects.get(pk=host.pk).state == "up"  # nothing happened yet
    page.locator("#drain-confirm").click()
    page.wait_for_selector("#last-drain")
    for move in Migration.objects.all():
        assert finished(move, 120).state == "succeeded", move.error_message
    page.reload()
    rows = page.locator(".drain-comparison tbody tr")
    assert rows.count() == 3
    assert "predicted ÷ actual" in page.locator(".drain-summary").inner_text()
    assert not VirtualMachine.objects.filter(host=host).exists()
    page.context.close()


def test_rolling_maintenance_refuses_n_minus_one_and_balance_plans(
    demo,
    live_url,
    browser,
    page,
):
    cluster = Cluster.objects.get(name="CLU-PROD")
    Host.objects.filter(name__in=["HV-PROD-2", "HV-PROD-3"]).update(memory_mib=4096)
    log_in(page, live_url, "demo-operator")
    page.goto(live_url + f"/clusters/{cluster.pk}/")
    page.locator("#maintain").click()
    page.wait_for_selector("#run-summary")
    refused = page.locator("#n-minus-one").inner_text()
    assert "HV-PROD-1 out: its VMs hold 3,840 MiB" in refused
    assert page.locator("#run-start").count() == 0
    page.goto(live_url + f"/clusters/{cluster.pk}/")
    page.locator("#balance").click()
    page.wait_for_selector("#balance-summary")
    text = page.locator("#balance-summary").inner_text()
    assert text.startswith("CLU-PROD: ")
    # HV-PROD-2 and -3 now run at 75 % of their 4 GiB: under 80 %, nothing moves.
    assert "every host is at or under 80 %" in text
    page.get_by_label("Level (%)").fill("70")
    page.get_by_role("button", name="Plan").click()
    page.wait_for_selector("#balance-plan")
    assert page.locator("#balance-plan tbody tr[data-vm]").count() >= 1
