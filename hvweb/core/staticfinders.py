"""Serve Plotly.js from the plotly wheel instead of a CDN or a copy in the repo."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_PREFIX = "vendor"
PLOTLY_FILE = "plotly.min.js"


class PlotlyFinder(BaseFinder):
    """Finds exactly ``vendor/plotly.min.js``, the bundle shipped in ``plotly``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(
            location=Path(plotly.__file__).parent / "package_data"
        )
        self.storage.prefix = PLOTLY_PREFIX

    def check(self, **kwargs: Any) -> list[Any]:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        if path == f"{PLOTLY_PREFIX}/{PLOTLY_FILE}":
            found = self.storage.path(PLOTLY_FILE)
            return [found] if find_all or kwargs.get("all") else found
        return [] if find_all or kwargs.get("all") else ""

    def list(self, ignore_patterns: Any):
        yield PLOTLY_FILE, self.storage


# Plotly.js 3+ bundles maplibre's stylesheet and injects it at load as an inline
# <style> whose id is a digest, unless an element with that id already exists.
_INJECTED_STYLE = re.compile(
    rb'if\(!document\.getElementById\("([0-9a-f]{16,})"\)\)\{var (\w+)='
    rb'document\.createElement\("style"\)'
)


def bundle_path() -> Path:
    return Path(plotly.__file__).parent / "package_data" / PLOTLY_FILE


@cache
def injected_style_ids() -> tuple[str, ...]:
    """The ids of the stylesheets the bundle would inject inline at load."""
    return tuple(
        m.group(1).decode()
        for m in _INJECTED_STYLE.finditer(bundle_path().read_bytes())
    )
