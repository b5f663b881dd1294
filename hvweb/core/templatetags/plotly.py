"""``{% plotly_script %}``: Plotly.js from this server, under the page's CSP.

The bundle injects maplibre's stylesheet as an inline ``<style>`` at load
(Plotly.js 3+), which the Content-Security-Policy refuses; it skips that when
an element with the stylesheet's id is in the document. hvweb draws no maps,
so an empty ``<template>`` with that id goes first, and nothing inline is needed.
"""

from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join

from hvweb.core.staticfinders import PLOTLY_FILE, PLOTLY_PREFIX, injected_style_ids

register = template.Library()


@register.simple_tag
def plotly_style_guards() -> str:
    """The guards alone, for a page that loads Plotly.js itself later (the
    migration page draws the move first, then runs the bundle)."""
    return format_html_join(
        "",
        '<template class="plotly-no-inline-style" id="{}"></template>',
        ((i,) for i in injected_style_ids()),
    )


@register.simple_tag
def plotly_script() -> str:
    return format_html(
        '{}<script src="{}"></script>',
        plotly_style_guards(),
        static(f"{PLOTLY_PREFIX}/{PLOTLY_FILE}"),
    )
