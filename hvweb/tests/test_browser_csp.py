"""Chromium reports no Content-Security-Policy violation on any page.

The pages are collected from the URLconf (the console's HTML pages, the
admin's pages, the API's docs), so a page added later is visited too. Each is
opened in Chromium with a listener for ``securitypolicyviolation`` installed
before the page's own scripts, and the console is watched for "Refused to".
The migration page draws its Plotly chart under the policy.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from hvweb.core.csp import POLICY
from hvweb.inventory.models import Host, VirtualMachine
from hvweb.maintenance.models import DrainRecord, MaintenanceRun
from hvweb.moves.models import Migration, Replay
from hvweb.moves.services import start_migration
from hvweb.moves.tasks import run_migration
from hvweb.webhooks.models import Endpoint

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("unworked_queue"),
]

LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _objects() -> dict[str, int | None]:
    """An object for each kind of page, by the route's first path segment."""
    vm = VirtualMachine.objects.select_related("host__cluster").first()
    first = lambda model: model.objects.order_by("pk").values_list(  # noqa: E731
        "pk", flat=True
    ).first()
    return {
        "cluster": vm.host.cluster_id,
        "host": vm.host_id,
        "vm": vm.pk,
        "migration": first(Migration),
        "replay_id": first(Replay),
        "webhook": first(Endpoint),
        "maintenance": first(MaintenanceRun),
        "drain": first(DrainRecord),
    }


def _console_pages(client) -> list[str]:
    """The console's HTML pages (outside the admin and the API)."""
    ids = _objects()
    urls = []

    def walk(patterns, namespace=None):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace in ("admin", "api"):
                    continue
                walk(p.url_patterns, p.namespace or namespace)
            elif (
                isinstance(p, URLPattern) and p.name and p.name != "admin-view-on-site"
            ):
                name = f"{namespace}:{p.name}" if namespace else p.name
                kwargs = {}
                for param in p.pattern.converters:  # clusters/<pk>/..., vms/<pk>/...
                    kind = str(p.pattern).split("/")[0].removesuffix("s")
                    kwargs[param] = ids.get(kind if param == "pk" else param)
                if None not in kwargs.values():  # a kind with no row: no page
                    urls.append(reverse(name, kwargs=kwargs))

    walk(get_resolver().url_patterns)
    html = []
    for url in dict.fromkeys(urls):
        response = client.get(url)
        if response.status_code == 200 and "text/html" in response["Content-Type"]:
            html.append(url)
    return html


def _admin_pages() -> list[str]:
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls.append(reverse(f"{prefix}_changelist"))
        urls.append(reverse(f"{prefix}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"{prefix}_change", args=[first.pk]))
    urls += [
        reverse("admin:app_list", kwargs={"app_label": label})
        for label in {m._meta.app_label for m in admin.site._registry}
    ]
    return urls


@pytest.fixture
def stage():
    call_command("seed_demo", verbosity=0)
    root = get_user_model().objects.create_superuser("root", password="pw")
    vm = VirtualMachine.objects.get(name="prod-cache-1")  # ready in the demo
    other = Host.objects.filter(cluster=vm.host.cluster).exclude(pk=vm.host_id)
    move = start_migration(vm, other.filter(state="up").first(), root, speed=0)
    run_migration.apply(args=[move.pk])  # passes to draw: the chart has data
    # The pages of what-if replays and webhooks need one of each.
    Replay.objects.create(
        migration=move, policy="throttle", performance_option="compression",
        link_bandwidth_mbps=10_000, downtime_limit_ms=300,
    )  # fmt: skip
    Endpoint.objects.create(
        team=vm.host.cluster.team, url="https://93.184.215.14/hook",
        events=["migration.failed"],
    )  # fmt: skip
    return root


def _violations(page, url: str) -> list[str]:
    refused: list[str] = []
    page.on(
        "console",
        lambda m: (
            refused.append(m.text) if "Content Security Policy" in m.text else None
        ),
    )
    response = page.goto(url)
    assert response.status < 400, (url, response.status)
    assert response.headers.get("content-security-policy") == POLICY
    page.wait_for_load_state("networkidle")
    return page.evaluate("window.__csp") + refused


def test_no_page_violates_the_content_security_policy(live_url, browser, stage):
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(stage)
    admin_pages = [u for u in _admin_pages() if client.get(u).status_code == 200]
    pages = _console_pages(client) + admin_pages + ["/api/docs/"]
    assert len(pages) > 40
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.set_default_timeout(15_000)
    found = {}
    # Logged out first: the login page.
    if bad := _violations(page, live_url + "/login/"):
        found["/login/"] = bad
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_url + "/")
    for url in pages:
        page = context.new_page()
        if bad := _violations(page, live_url + url):
            found[url] = bad
        page.close()
    # The chart was drawn, and Plotly's global rules went in under the policy.
    move = Migration.objects.order_by("pk").first()
    page = context.new_page()
    page.goto(live_url + f"/migrations/{move.pk}/")
    page.wait_for_selector(".js-plotly-plot .main-svg")
    rules = page.evaluate(
        "document.getElementById('plotly.js-style-global').sheet.cssRules.length"
    )
    context.close()
    assert found == {}
    assert rules > 10


def test_an_inline_script_is_refused_and_reported(live_url, browser, stage):
    """The listener works: an injected inline script is blocked and reported."""
    context = browser.new_context()
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.goto(live_url + "/login/")
    page.evaluate(
        "const s = document.createElement('script');"
        "s.textContent = 'window.ran = true'; document.body.appendChild(s);"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.ran") is None
    assert any("script-src" in v for v in page.evaluate("window.__csp"))
    context.close()
