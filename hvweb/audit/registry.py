"""Which models the audit trail records, and which of their fields.

django-auditlog stores one ``LogEntry`` per create, update or delete of a
registered model: the actor (the signed-in user, or the API token's user),
the time, the address, and the changed fields as ``{field: [before, after]}``.
Registering here keeps the inventory's models free of audit code.

Each entry also records the team its object belonged to when it was written
(``additional_data["team"]``), so that a team's administrators read their own
team's entries (``hvweb.audit.admin``), deleted objects' included.
"""

from __future__ import annotations

from collections.abc import Iterable

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from auditlog.signals import post_log, pre_log
from django.apps import apps
from django.contrib.auth import get_user_model

from . import context

#: Every inventory model, with all of its fields.
INVENTORY_MODELS = [
    "inventory.Team",
    "inventory.Membership",
    "inventory.Cluster",
    "inventory.Host",
    "inventory.ClusterSharedVolume",
    "inventory.VirtualMachine",
    "inventory.VirtualDisk",
    "inventory.NetworkAdapter",
]


def audits(model, fields: Iterable[str]) -> bool:
    """Whether saving ``fields`` of ``model`` writes an audit entry.

    auditlog reads a registered model's row back before every save to diff it,
    whatever the save changes: a caller that saves a row many times a second
    (a move's journal, five progress frames a second per move) asks this and
    saves the fields nobody audits with auditlog switched off.
    """
    if not auditlog.contains(model):
        return False
    registered = auditlog.get_model_fields(model)
    include, exclude = registered["include_fields"], registered["exclude_fields"]
    return any((not include or f in include) and f not in exclude for f in fields)


def register_models() -> None:
    for label in INVENTORY_MODELS:
        model = apps.get_model(label)
        if not auditlog.contains(model):
            auditlog.register(model)
    user = get_user_model()
    if not auditlog.contains(user):
        # Who may log in and as what matters; the password hash and the time of
        # the last login do not belong in a log (logins are axes' AccessLog).
        auditlog.register(user, exclude_fields=["password", "last_login"])
    register_migrations()
    token = apps.get_model("api", "ApiToken")
    if not auditlog.contains(token):
        auditlog.register(token, exclude_fields=["digest"])  # the prefix names it
    # The object is noted before auditlog writes its entry; its team is stamped
    # into the entry as that is saved (hvweb.audit.context), so only saves that
    # do write an entry look the team up, and no entry is written twice.
    pre_log.connect(_note_team, dispatch_uid="hvweb-audit-team")
    post_log.connect(_forget_team, dispatch_uid="hvweb-audit-team")
    register_webhooks()
    register_replays()
    register_maintenance()


def register_webhooks() -> None:
    """Who pointed a team's webhooks where, never the secret that signs them."""
    if not apps.is_installed("hvweb.webhooks"):
        return
    model = apps.get_model("webhooks", "Endpoint")
    if not auditlog.contains(model):
        auditlog.register(model, exclude_fields=["secret"])


def register_replays() -> None:
    """Who asked for a what-if replay of a move, and with which settings.

    A replay writes nothing but its own row (and a worker's time); its result
    and passes, written by the worker with ``update()``, are the replay's own
    record, not the audit's.
    """
    _register_fields(
        "hvweb.moves",
        "moves",
        "Replay",
        [
            "migration",
            "requested_by",
            "policy",
            "performance_option",
            "link_bandwidth_mbps",
            "downtime_limit_ms",
            "state",
            "error",
        ],
    )


def register_maintenance() -> None:
    """Rolling maintenance runs started and cancelled, and every drain's record.

    A run's state, hosts, hold and options are what a person decides (or what
    ends the run); its step, phase, journal and version change at every tick
    of the worker and are the run's own journal. A drain's record is who
    drained which host (a failback brings back what the last one moved away);
    its plan is the timed plan shown before, not audit material.
    """
    _register_fields(
        "hvweb.maintenance",
        "maintenance",
        "MaintenanceRun",
        [
            "cluster",
            "requested_by",
            "hosts",
            "hold_s",
            "options",
            "state",
            "cancel_requested",
            "error",
        ],
    )
    _register_fields(
        "hvweb.maintenance",
        "maintenance",
        "DrainRecord",
        ["host", "kind", "cluster", "requested_by"],
    )


def _register_fields(app: str, label: str, name: str, wanted: list[str]) -> None:
    """Register ``label.name`` (if its app is installed) with the ``wanted``
    fields it has."""
    if not apps.is_installed(app):
        return
    try:
        model = apps.get_model(label, name)
    except LookupError:
        return
    if auditlog.contains(model):
        return
    present = {f.name for f in model._meta.get_fields()}
    auditlog.register(model, include_fields=[f for f in wanted if f in present])


def team_of(instance) -> int | None:
    """The id of the team ``instance`` belongs to, by its model's ``team_path``."""
    path = getattr(type(instance), "team_path", None)
    if path is None:
        return None
    if path == "":
        return instance.pk
    *hops, last = path.split("__")
    obj = instance
    try:
        for hop in hops:
            obj = getattr(obj, hop)
    except Exception:  # noqa: BLE001 - a parent already gone: no team to name
        return None
    return getattr(obj, f"{last}_id", None)


def _note_team(sender, instance, **kwargs) -> None:
    context.pending_object.set(instance)


def _forget_team(sender, **kwargs) -> None:
    context.pending_object.set(None)


def register_migrations() -> None:
    """Moves started and cancelled, once the orchestration's app is installed.

    Only the fields a person decides or that end the move are recorded; the
    stage and progress a worker writes many times a second are the migration's
    own history (its stages and passes), not audit noise.
    """
    if not apps.is_installed("hvweb.moves"):
        return
    try:
        model = apps.get_model("moves", "Migration")
    except LookupError:
        return
    if auditlog.contains(model):
        return
    wanted = [
        "vm",
        "cluster",
        "source",
        "destination",
        "requested_by",
        "performance_option",
        "downtime_limit_ms",
        "policy",
        "speed",
        "faults",
        "state",
        "cancel_requested",
        "error_code",
        "error_message",
    ]
    present = {f.name for f in model._meta.get_fields()}
    auditlog.register(model, include_fields=[f for f in wanted if f in present])


def record_owner_change(migration) -> None:
    """Record a move's change of the VM's owner, on behalf of who asked for it.

    The worker changes the owner at the "online" stage with a queryset
    ``update()``, which auditlog does not see, and calls this in the same
    transaction (``hvweb.moves.runner``). Called, not hooked to the move's
    save: that event's journal entry is one UPDATE statement, with no save.
    """
    LogEntry.objects.log_create(
        migration.vm,
        action=LogEntry.Action.UPDATE,
        changes={"host": [migration.source_id, migration.destination_id]},
        actor=migration.requested_by,
        additional_data={"migration": migration.pk, "team": team_of(migration)},
    )
