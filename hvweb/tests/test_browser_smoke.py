"""The real stack in a real browser: pages and the local Plotly.js load."""

import pytest

from hvweb.core.staticfinders import injected_style_ids

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_console_loads_in_chromium_with_plotly_from_its_own_server(live_url, page):
    external = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(live_url) else external.append(r.url),
    )
    response = page.goto(live_url + "/")
    assert response.status == 200
    assert "hvweb" in page.title()
    # As {% plotly_script %} does: the placeholders that keep Plotly.js from
    # injecting an inline stylesheet the Content-Security-Policy would refuse.
    for style_id in injected_style_ids():
        page.evaluate(
            "(id) => document.head.appendChild("
            "Object.assign(document.createElement('template'), {id}))",
            style_id,
        )
    page.add_script_tag(url=live_url + "/static/vendor/plotly.min.js")
    assert page.evaluate("typeof Plotly.newPlot") == "function"
    assert external == []
