"""Open streams follow access: a change that may take it away makes them re-check.

A user's pages answer 404 as soon as their membership goes, but a websocket
opened before went on delivering frames. Each stream joins its user's group
(``user.<id>``); when a membership is added, changed or removed, or the
account changes (deactivated, no longer superuser) or goes, that group is told
to re-check once the change commits, and a stream whose user may no longer
see its object sends an error frame and closes (4403). A cluster handed to
another team makes its own stream re-check the same way.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from hvweb.core import realtime
from hvweb.inventory.models import Cluster, Membership

__all__ = ["connect"]


def _membership_changed(sender, instance, created=False, **kwargs) -> None:
    if not created:  # a new membership takes nothing away
        realtime.recheck_on_commit([realtime.user_group(instance.user_id)])


def _user_changed(sender, instance, created=False, update_fields=None, **kwargs):
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # a new account has no streams; a login changes nobody's access
    realtime.recheck_on_commit([realtime.user_group(instance.pk)])


def _cluster_changed(sender, instance, created=False, **kwargs) -> None:
    if not created:
        realtime.recheck_on_commit([realtime.cluster_group(instance.pk)])


def connect() -> None:
    user = get_user_model()
    for name, signal in (("save", post_save), ("delete", post_delete)):
        signal.connect(
            _membership_changed,
            sender=Membership,
            dispatch_uid=f"hvweb-recheck-membership-{name}",
        )
        signal.connect(
            _user_changed, sender=user, dispatch_uid=f"hvweb-recheck-user-{name}"
        )
    post_save.connect(
        _cluster_changed, sender=Cluster, dispatch_uid="hvweb-recheck-cluster"
    )
