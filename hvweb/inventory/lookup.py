"""Find a cluster, host or VM from what a person types on the command line.

Names repeat (a host HV01 in two teams' clusters, a VM name on two clusters),
so every command looks objects up here, and a name that matches several is
refused with the candidates and how to pick one:

* ``NAME`` - when it names one object you may see;
* ``CLUSTER/NAME`` for a host or VM (``TEAM/CLUSTER/NAME`` when cluster names
  repeat across teams), ``TEAM/NAME`` for a cluster;
* ``id:N`` - the object's id (as the API and the pages show it);
* a VM's VMId (a GUID).

Names may contain ``/``: every way of splitting the text is tried.
"""

from __future__ import annotations

import re
import uuid

from django.db.models import Q, QuerySet

__all__ = ["LookupError_", "find_cluster", "find_host", "find_vm"]

#: How many candidates an ambiguous name lists.
SHOWN = 10


class LookupError_(Exception):
    """No object, or more than one, answers to the text given."""


_ID = re.compile(r"^(?:id:|#)(\d+)$")


def _splits(ref: str, parts: int) -> list[tuple[str, ...]]:
    """Every way to cut ``ref`` at ``parts - 1`` slashes (names may hold one)."""
    if parts == 1:
        return [(ref,)]
    found = []
    for i, ch in enumerate(ref):
        if ch == "/":
            for rest in _splits(ref[i + 1 :], parts - 1):
                found.append((ref[:i], *rest))
    return found


def _by_id(queryset: QuerySet, ref: str, what: str):
    match = _ID.match(ref.strip())
    if match:
        obj = queryset.filter(pk=int(match[1])).first()
        if obj is None:
            raise LookupError_(f"no {what} with id {match[1]}")
        return obj
    return None


def _decide(candidates: list, ref: str, what: str, describe, hint: str):
    unique = list({obj.pk: obj for obj in candidates}.values())
    if not unique:
        raise LookupError_(f"no {what} named {ref!r}")
    if len(unique) > 1:
        shown = ", ".join(describe(o) for o in unique[:SHOWN])
        more = f" and {len(unique) - SHOWN} more" if len(unique) > SHOWN else ""
        raise LookupError_(
            f"{ref!r} names {len(unique)} {what}s: {shown}{more}. Say which: {hint}"
        )
    return unique[0]


def find_cluster(queryset: QuerySet, ref: str):
    """The one cluster of ``queryset`` that ``ref`` names."""
    obj = _by_id(queryset, ref, "cluster")
    if obj is not None:
        return obj
    q = Q(name=ref)
    for team, name in _splits(ref, 2):
        q |= Q(team__name=team, name=name)
    return _decide(
        list(queryset.filter(q).select_related("team")),
        ref,
        "cluster",
        lambda c: f"{c.team.name}/{c.name} (id:{c.pk})",
        "TEAM/NAME or id:N",
    )


def find_host(queryset: QuerySet, ref: str):
    """The one host of ``queryset`` that ``ref`` names."""
    obj = _by_id(queryset, ref, "host")
    if obj is not None:
        return obj
    q = Q(name=ref)
    for cluster, name in _splits(ref, 2):
        q |= Q(cluster__name=cluster, name=name)
    for team, cluster, name in _splits(ref, 3):
        q |= Q(cluster__team__name=team, cluster__name=cluster, name=name)
    return _decide(
        list(queryset.filter(q).select_related("cluster__team")),
        ref,
        "host",
        lambda h: f"{h.cluster.name}/{h.name} (id:{h.pk}, team {h.cluster.team.name})",
        "CLUSTER/NAME, TEAM/CLUSTER/NAME or id:N",
    )


def find_vm(queryset: QuerySet, ref: str):
    """The one virtual machine of ``queryset`` that ``ref`` names."""
    obj = _by_id(queryset, ref, "virtual machine")
    if obj is not None:
        return obj
    q = Q(name=ref)
    try:
        q |= Q(vm_id=uuid.UUID(ref.strip().strip("{}")))
    except ValueError:
        pass
    for cluster, name in _splits(ref, 2):
        q |= Q(host__cluster__name=cluster, name=name)
    for team, cluster, name in _splits(ref, 3):
        q |= Q(host__cluster__team__name=team, host__cluster__name=cluster, name=name)
    return _decide(
        list(queryset.filter(q).select_related("host__cluster__team")),
        ref,
        "virtual machine",
        lambda v: (
            f"{v.host.cluster.name}/{v.name} (id:{v.pk}, on {v.host.name}, team "
            f"{v.host.cluster.team.name})"
        ),
        "CLUSTER/NAME, TEAM/CLUSTER/NAME, its VMId or id:N",
    )
