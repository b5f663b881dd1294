"""A team administrator brings in a real cluster, in Chromium, on the real stack.

daphne serves the ASGI app on the test database and the staged upload waits in
the suite's Redis between the dry run and the apply. Set
``HVWEB_SCREENSHOTS=<folder>`` to keep the pages' screenshots.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hvweb.inventory.models import Cluster, Team, VirtualMachine
from hvweb.inventory.testing import make_member

from .test_browser_dashboard import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIXTURE = Path(__file__).parent / "fixtures" / "hyperv" / "ps51-numbers-utf16.json"


def test_an_administrator_uploads_reads_the_dry_run_applies_and_sees_the_fix(
    live_url, browser, page, redis_url
):
    team = Team.objects.create(name="Eastern")
    make_member(team, "administrator", "eve")
    log_in(page, live_url, "eve")

    page.get_by_role("link", name="Import").click()
    page.wait_for_url(live_url + "/imports/")
    page.get_by_label("Export file").set_input_files(str(FIXTURE))
    page.get_by_label("Team").select_option(label="Eastern")
    page.get_by_role("button", name="Dry run").click()

    dry_run = page.locator("#dry-run")
    dry_run.wait_for()
    assert "Dry run: CLU-EAST into team Eastern" in dry_run.inner_text()
    vms = page.locator('#summary tr[data-kind="vm"]')
    assert vms.locator('[data-status="created"]').inner_text() == "5"
    rows = page.locator('#changes tr[data-name="east-db-1"]')
    assert rows.first.get_attribute("data-status") == "created"
    memory = [t for t in rows.all_inner_texts() if "memory_mib" in t]
    assert memory and memory[0].split()[-1] == "8192"  # field, old (—), new
    assert not Cluster.objects.filter(name="CLU-EAST").exists()  # nothing yet
    shot(page, "import-dry-run")

    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector("#provenance")
    cluster = Cluster.objects.get(name="CLU-EAST", team=team)
    assert page.url == live_url + cluster.get_absolute_url()
    provenance = page.locator("#provenance").inner_text()
    assert "Imported from ps51-numbers-utf16.json" in provenance
    assert "exported on HV-E1" in provenance and cluster.imported_sha256 in provenance
    shot(page, "import-cluster")

    vm = VirtualMachine.objects.get(name="east-app-1", host__cluster=cluster)
    page.goto(live_url + vm.get_absolute_url())
    fix = page.locator('#powershell li[data-rule="AUTO_START_ACTION"]')
    assert (
        "Set-VM -ComputerName HV-E1 -Name east-app-1 -AutomaticStartAction Nothing"
        in fix.inner_text()
    )
    # Both other hosts refuse it for this rule, the VM's own: said once above
    # the matrix, whose row is one cell across the hosts.
    failing = page.locator('#readiness tr[data-rule="AUTO_START_ACTION"] td.fail')
    assert failing.count() == 1
    assert failing.get_attribute("colspan") == "2"
    assert "AUTO_START_ACTION" in page.locator("#vm-failures").inner_text()
    shot(page, "import-vm-fix")
