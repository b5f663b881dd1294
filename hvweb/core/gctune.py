"""The web process's garbage collector, set for pages that build many objects.

CPython frees most objects by reference counting; its cyclic collector runs
besides, by generations, after every ``threshold0`` net new container objects.
A page of the overview (64 hosts, 1,000 VMs) builds a few hundred thousand,
so at CPython's default of 700 each request ran over a hundred young
collections and, every so often, a full one that scanned every live object,
the page's own included: 100-160 ms on one request in ten or twenty, which was
most of the pages' p95 (benchmarks/pages_scale.py, issue 13 item 10).

:func:`tune` freezes what start-up built (``gc.freeze``: the modules, the URL
resolvers, the templates' caches; "ignored in all future collections", the
``gc`` module's documentation) and raises the thresholds to
``settings.HVWEB_GC_THRESHOLD``. Cycles are still collected, less often.
"""

from __future__ import annotations

import gc

from django.conf import settings


def tune() -> tuple[int, int, int]:
    """Freeze the objects start-up built and apply the setting's thresholds;
    returns them."""
    gc.collect()
    gc.freeze()
    threshold = settings.HVWEB_GC_THRESHOLD
    gc.set_threshold(*threshold)
    return threshold
