"""Issue 11 in Chromium: what the console shows must be true, at 1280×800 and 390×844.

Each test drives the real stack (daphne, a Celery worker, Redis) through the
pages as an operator would: a cancelled move reads as cancelled, once, in
neutral words; a running move shows the pass under way and the model's
outlook; a finished one its final figures; the event log accounts for every
number; the VM page says a VM's own failing rule once and offers no figures
for a move that cannot happen; host cards say whether a host can take VMs;
tables scroll inside their box at phone width. Set ``HVWEB_SCREENSHOTS`` to
save the pages.
"""

from __future__ import annotations

import re

import pytest

from hvweb.inventory.models import VirtualMachine
from hvweb.moves.models import Migration
from hvweb.tests.test_browser_dashboard import (  # noqa: F401
    demo,
    log_in,
    shot,
    wait_for,
)
from migrator.units import format_duration, format_rate, format_size

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(params=list(SIZES))
def sized(request, browser):
    """A page at each of the two widths the issue names."""
    width, height = SIZES[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.width_name = request.param
    yield page
    context.close()


def start_move(page, live_url, vm, *, option="tcpip", speed="2", limit=None):
    page.goto(live_url + f"/vms/{vm.pk}/")
    page.get_by_label("Performance option").select_option(option)
    if limit is not None:
        page.get_by_label("Downtime limit (ms)").fill(str(limit))
    if speed == "unpaced":
        page.get_by_label("as fast as the machine can").check()
    else:
        page.get_by_label("Simulation speed").fill(speed)
    page.get_by_role("button", name="Live migrate").click()
    page.wait_for_url(live_url + "/migrations/*/")
    page.wait_for_selector('#connection[data-state="live"]')
    return Migration.objects.get(vm=vm)


def wait_state(page, *states, timeout=90_000):
    wait_for(
        page,
        f"{list(states)!r}.includes(document.querySelector('#migration').dataset.state)",
        timeout=timeout,
    )


def tile(page, name):
    return (
        page.locator(f'[data-k="{name}"]').inner_text(),
        page.locator(f'[data-stat="{name}"]').inner_text(),
    )


LOG_ACCOUNT = """() => {
  const items = [...document.querySelectorAll('#log li')];
  let gaps = 0;
  for (const li of items.filter(li => li.classList.contains('gap'))) {
    gaps += Number(li.textContent.match(/\\d+/)[0]);
  }
  const seqs = items.filter(li => li.dataset.seq).map(li => Number(li.dataset.seq));
  return {gaps, seqs};
}"""

# Cells with a piece of text laid out on more than one line (a name or a state
# cut apart, "Succeede" / "d", "HV-/PROD-/1").
WRAPPED_CELLS = """(sel) => [...document.querySelectorAll(sel)].filter(td => {
  const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    if (tops.size > 1) return true;
  }
  return false;
}).map(td => td.textContent.trim())"""


def no_sideways_scroll(page):
    overflow = "document.documentElement.scrollWidth - window.innerWidth"
    return page.evaluate(overflow) <= 0


# --- A cancel: a state, a stage apart, neutral words once, honest numbers -----------


def test_a_cancelled_move_reads_as_cancelled_once_with_its_figures_and_log(
    demo,  # noqa: F811 (the fixture, imported)
    live_url,
    celery_worker,
    sized,
):
    page = sized
    vm = VirtualMachine.objects.get(name="prod-db-1")  # 2 GiB: pass 1 lasts
    log_in(page, live_url, "demo-operator")
    move = start_move(page, live_url, vm, speed="1")
    wait_for(
        page,
        "hvwebMigration.state.passNo === 1 && hvwebMigration.state.applied > 8",
        timeout=60_000,
    )
    # The cancel goes through the API: the page stays, with its stream and charts.
    page.evaluate("window.sameDocument = true")
    page.get_by_role("button", name="Cancel the move").click()
    wait_state(page, "cancelled")
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"
    move.refresh_from_db()
    assert move.state == "cancelled"
    wait_for(
        page,
        f"document.querySelector('#migration').dataset.lastSeq === '{move.last_seq}'",
    )

    # A state is a state; the stage it ended in is shown apart.
    assert page.locator("#state").inner_text() == "Cancelled"
    assert page.locator("#stage").inner_text() == (
        "3 of 7, Transfer of memory pages (where it ended)"
    )
    # The operator's cancel is not an error: neutral words, said once.
    outcome = page.locator("#outcome")
    assert outcome.is_visible()
    said = "Cancelled by demo-operator during Transfer of memory pages."
    assert outcome.inner_text() == said
    assert page.locator("#error").is_hidden()
    body = page.locator("main").inner_text()
    assert "CANCELLED" not in body
    assert body.count(said) == 1 + page.locator("#log li.kind-cancelled").count()

    # The tiles show how it ended, not the last live frame.
    assert tile(page, "pass") == ("Pre-copy passes finished", "0")
    label, value = tile(page, "remaining")
    assert label == "Pages sent in a blackout" and not re.search(r"\d", value)
    assert tile(page, "eta") == ("Ended", "cancelled")
    assert page.locator("#passes tbody").inner_text().strip() == "No pass yet."

    # Every number in the log is accounted for: events listed, progress counted.
    account = page.evaluate(LOG_ACCOUNT)
    assert account["seqs"] == sorted(account["seqs"])
    assert account["gaps"] + len(account["seqs"]) == move.last_seq
    assert account["gaps"] > 0
    assert "progress update" in page.locator("#log").inner_text()
    shot(page, f"migration-cancelled-{page.width_name}")

    # History: the state once, the stage apart, the duration, the time zone.
    page.goto(live_url + "/migrations/")
    row = page.locator(f'#migrations tbody tr:has(a[href="/migrations/{move.pk}/"])')
    text = row.inner_text()
    assert "Cancelled" in text and "CANCELLED" not in text
    assert "Transfer of memory pages" in text
    assert page.locator("#migrations thead").inner_text().count("Duration") == 1
    took = row.locator("[data-duration]").inner_text()
    assert re.search(r"\d+(\.\d+)? (ms|s|min) ", took), took
    assert text.rstrip().endswith("UTC")
    # Names, states and sizes stay whole; the table scrolls in its box.
    assert page.evaluate(WRAPPED_CELLS, "#migrations tbody td") == []
    assert no_sideways_scroll(page)
    filters_open = page.evaluate("document.getElementById('filters-box').open")
    assert filters_open is (page.width_name == "desktop")  # folded on a phone
    if page.width_name == "phone":
        box = page.locator("#migrations").locator("xpath=..")
        assert box.evaluate("b => b.scrollWidth > b.clientWidth")
    shot(page, f"history-{page.width_name}")


# --- A running move says the most; a finished one looks finished ---------------------


def test_a_refused_cancel_says_why_beside_the_button_without_a_reload(
    demo,  # noqa: F811 (the fixture, imported)
    live_url,
    celery_worker,
    page,
):
    """The page's stream stopped (a network that dropped it, say) while the
    move ended: the button is still there, the API refuses, the page says why."""
    vm = VirtualMachine.objects.get(name="prod-web-1")
    log_in(page, live_url, "demo-operator")
    move = start_move(page, live_url, vm, speed="1")
    wait_state(page, "running")  # the snapshot is in
    page.evaluate("hvwebMigration.conn.stop(); window.sameDocument = true")
    for _ in range(600):  # the move goes on without the page
        move.refresh_from_db()
        if not move.active:
            break
        page.wait_for_timeout(100)
    assert move.state == "succeeded"
    page.get_by_role("button", name="Cancel the move").click()
    said = page.locator('.control-message.error[data-for="cancel"]')
    said.wait_for()
    assert said.inner_text() == (
        "MIGRATION_FINISHED: The move already ended (succeeded)."
    )
    assert said.get_attribute("role") == "alert"
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"
    # Asked again: said once, not stacked.
    page.get_by_role("button", name="Cancel the move").click()
    page.wait_for_timeout(500)
    assert said.count() == 1


def test_a_running_move_grows_its_pass_and_a_finished_one_shows_final_figures(
    demo,  # noqa: F811 (the fixture, imported)
    live_url,
    celery_worker,
    sized,
):
    page = sized
    vm = VirtualMachine.objects.get(name="prod-db-1")
    log_in(page, live_url, "demo-operator")
    move = start_move(page, live_url, vm, speed="2")

    # Pass 1 is most of the move: its bar grows with what it has sent so far.
    wait_for(
        page,
        "(document.querySelector('#chart-passes').dataset.running || '')"
        ".startsWith('1:')",
        timeout=60_000,
    )
    first = int(page.locator("#chart-passes").get_attribute("data-running")[2:])
    wait_for(
        page,
        "Number((document.querySelector('#chart-passes').dataset.running || '1:0')"
        f".slice(2)) > {first}",
    )
    assert "now (pass 1)" in page.locator("#chart-blackout").get_attribute("data-bars")
    # Axes say what they show; the bytes chart starts at zero.
    assert "pre-copy pass" in page.locator("#chart-passes .xtitle").text_content()
    assert "pages" in page.locator("#chart-passes .ytitle").text_content()
    assert "blackout" in page.locator("#chart-blackout .ytitle").text_content()
    xtitle = page.locator("#chart-blackout .xtitle").text_content()
    assert "if pre-copy stopped" in xtitle
    assert "data sent (MiB)" in page.locator("#chart-bytes .ytitle").text_content()
    origin = page.evaluate(
        "(d => [d.x[0], d.y[0]])(document.getElementById('chart-bytes').data[0])"
    )
    assert origin == [0, 0]
    # ETA, outlook and blackout-if-stopped are the engine's model, in words.
    label, eta = tile(page, "eta")
    assert label == "ETA" and eta.startswith("≈ ") and "simulated" in eta
    outlook = page.locator('[data-stat="outlook"]').inner_text()
    assert re.match(r"(converges in \d+ pass|will not converge)", outlook), outlook
    assert "limit" in outlook
    assert re.search(r"\d (ms|s)$", tile(page, "blackout")[1])
    shot(page, f"migration-live-{page.width_name}")

    wait_state(page, "succeeded")
    move.refresh_from_db()
    wait_for(
        page,
        f"document.querySelector('#migration').dataset.lastSeq === '{move.last_seq}'",
    )
    assert page.locator("#state").inner_text() == "Succeeded"
    assert page.locator("#stage").inner_text() == (
        "7 of 7, Network re-direction (the last)"
    )
    assert tile(page, "remaining") == (
        "Pages sent in the blackout",
        f"{move.final_dirty_pages:,}",
    )
    assert tile(page, "pass") == ("Pre-copy passes", str(move.passes))
    assert tile(page, "rates")[0] == "Last pass's dirty rate / link rate"
    assert tile(page, "blackout") == (
        "Blackout (downtime)",
        format_duration(move.downtime_s),
    )
    assert tile(page, "eta") == ("Finished", "done")
    assert page.locator("#chart-passes").get_attribute("data-running") == ""
    assert page.locator('[data-stat="outlook"]').inner_text().startswith("moved in ")
    assert "now" not in page.locator("#chart-blackout").get_attribute("data-bars")
    shot(page, f"migration-done-{page.width_name}")

    # The same page from history, drawn from the snapshot, says the same.
    page.reload()
    page.wait_for_selector('#connection[data-state="live"]')
    wait_for(page, "hvwebMigration.state.m !== null")
    assert tile(page, "remaining")[1] == f"{move.final_dirty_pages:,}"
    assert page.locator("#stage").inner_text().startswith("7 of 7")


def test_an_idle_vms_blackout_bars_are_readable(
    demo,  # noqa: F811 (the fixture, imported)
    live_url,
    celery_worker,
    sized,
):
    page = sized
    vm = VirtualMachine.objects.get(name="prod-idle-1")
    log_in(page, live_url, "demo-operator")
    start_move(page, live_url, vm, speed="unpaced")
    wait_state(page, "succeeded")
    page.wait_for_timeout(300)  # the last redraw
    bars = page.locator("#chart-blackout g.trace.bars g.point path")
    heights = [bars.nth(i).bounding_box()["height"] for i in range(bars.count())]
    assert len(heights) >= 3  # after pass 1, predicted, actual
    assert min(heights) >= 20, heights  # each stands clear of the axis
    labels = page.locator("#chart-blackout g.trace.bars text").evaluate_all(
        "els => els.map(e => e.textContent)"
    )
    assert all(t.endswith(" ms") for t in labels), labels


# --- The VM page, the overview, the move form, the viewer ----------------------------


def test_the_vm_page_says_a_vms_own_rule_once_and_host_cards_say_who_can_take_vms(
    demo,  # noqa: F811 (the fixture, imported)
    live_url,
    sized,
):
    page = sized
    log_in(page, live_url, "demo-operator")

    # Units: the scripts format exactly as the server does.
    samples = {
        "size": [0, 100, 1536, 384 * 2**20, 45.25 * 2**20, 2**30, 1.5 * 2**40],
        "rate": [1e9, 2.5e9, 100e6, 4e3],
        "duration": [0, 0.0005, 0.0452, 0.25, 1.4, 12.5, 125, 3720],
    }
    python = {"size": format_size, "rate": format_rate, "duration": format_duration}
    shown = page.evaluate(
        "s => Object.fromEntries(Object.entries(s).map(([k, xs]) =>"
        " [k, xs.map(x => hvweb.fmt[k](x))]))",
        samples,
    )
    assert shown == {k: [python[k](x) for x in xs] for k, xs in samples.items()}

    # Host cards: five of CLU-LAB's seven hosts can take nothing, and say why.
    page.goto(live_url + "/")
    cards = {
        "HV-LAB-1": "Can take VMs",
        "HV-LAB-2": "Can take VMs",
        "HV-LAB-AMD": "CPU_VENDOR",
        "HV-LAB-2008": "HYPERV_VERSION",
        "HV-LAB-NOSAN": "SHARED_STORAGE",
        "HV-LAB-NOTJOINED": "FAILOVER_CLUSTER",
        "HV-LAB-DBOOT": "BOOT_DRIVE",
    }
    for host, says in cards.items():
        card = page.locator(f"article.host-col:has(h3 a:text-is('{host}'))")
        assert says in card.locator(".takes").inner_text(), host
    assert no_sideways_scroll(page)
    shot(page, f"clusters-{page.width_name}")

    # A VM that fails its own rule: once, above the matrix; no prediction.
    vm = VirtualMachine.objects.get(name="lab-local-disk")
    page.goto(live_url + f"/vms/{vm.pk}/")
    assert page.locator("#vm-failures li").count() == 1
    assert "HIGHLY_AVAILABLE" in page.locator("#vm-failures").inner_text()
    main = page.locator("main").inner_text()
    assert main.count("is on local storage") == 1
    assert page.locator("[data-p=passes]").count() == 0
    assert page.locator("#no-prediction").is_visible()
    statuses = page.locator("#destinations > li").evaluate_all(
        "lis => lis.map(li => [li.dataset.host, li.dataset.ownStatus])"
    )
    # Every host refuses the VM; the healthy one, fit itself, ranks first.
    (healthy,) = {"HV-LAB-1", "HV-LAB-2"} - {vm.host.name}
    assert statuses[0] == [healthy, "ready"]
    assert all(s == "blocked" for _, s in statuses[1:])
    assert no_sideways_scroll(page)
    if page.width_name == "phone":
        box = page.locator("#readiness").locator("xpath=..")
        assert box.evaluate("b => b.scrollWidth > b.clientWidth")
    shot(page, f"vm-blocked-{page.width_name}")

    # The move form: pace as a multiple of real time, or as fast as it can.
    vm = VirtualMachine.objects.get(name="prod-web-1")
    page.goto(live_url + f"/vms/{vm.pk}/")
    assert "0 means no limit" in page.locator("#downtime-help").inner_text()
    page.get_by_label("as fast as the machine can").check()
    assert page.locator("#speed").is_disabled()
    wait_for(
        page, "document.querySelector('[data-p=total]').textContent.endsWith('unpaced')"
    )
    page.get_by_label("paced at").check()
    page.get_by_label("Simulation speed").fill("2")
    wait_for(
        page, "document.querySelector('[data-p=total]').textContent.endsWith(' here')"
    )
    assert no_sideways_scroll(page)

    # A viewer is told the page is read-only.
    page.context.clear_cookies()
    log_in(page, live_url, "demo-viewer")
    page.goto(live_url + f"/vms/{vm.pk}/")
    hint = page.locator("#read-only")
    assert hint.is_visible() and "read-only" in hint.inner_text()
    assert page.get_by_role("button", name="Live migrate").count() == 0
