from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Health, realtime plumbing and the pages' frame, shared by the other apps."""

    name = "hvweb.core"
    label = "core"
