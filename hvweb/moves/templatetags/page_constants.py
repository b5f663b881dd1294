"""``{% page_constants %}``: the constants the pages' scripts read, as one json_script.

base.html puts it on every page (``#hvweb-constants``); ``static/js/common.js``
parses it into ``hvweb.constants``. Each value comes from where it is defined
(the engine's stages, the move states, the URL patterns), so no script types
a rule or a label again.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import json_script

from hvweb.inventory.choices import MigrationPolicy, PowerState
from hvweb.moves.choices import MigrationState
from migrator.policy import NOT_CONVERGING
from migrator.stages import Stage

register = template.Library()


def constants() -> dict[str, Any]:
    """What ``hvweb.constants`` holds."""
    return {
        # Reversed with id 0; hvweb.urlFor puts the real id in its place.
        "urls": {
            "vm": reverse("inventory:vm", args=[0]),
            "host": reverse("inventory:host", args=[0]),
            "migration": reverse("moves:migration", args=[0]),
        },
        "stages": [
            {
                "stage": stage.value,
                "number": stage.number,
                "label": stage.label,
                "cancellable": stage.cancellable,
            }
            for stage in Stage
        ],
        "active_states": list(MigrationState.active()),
        "state_labels": dict(MigrationState.choices),
        "power_state_labels": dict(PowerState.choices),
        "policy_labels": dict(MigrationPolicy.choices),
        # The failure code of a move its policy gave up on (the VM stays put).
        "not_converging": NOT_CONVERGING,
    }


@register.simple_tag
def page_constants() -> str:
    return json_script(constants(), "hvweb-constants")
