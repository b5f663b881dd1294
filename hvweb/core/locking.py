"""How the console locks a row while it decides: that row alone, weakly."""

from __future__ import annotations

from django.db.models import Model, QuerySet

__all__ = ["ROW_ONLY", "locked"]

#: ``select_for_update(**ROW_ONLY)`` locks only the queried model's rows, not
#: those ``select_related`` joins in, and as PostgreSQL's FOR NO KEY UPDATE,
#: which still lets other transactions insert rows that refer to them (a move
#: naming a host, a move's events). Locking the joined hosts and clusters too
#: let a drain (host, then VM) and "configure HA" (VM with its host) deadlock;
#: the API fuzzer found it. SQLite takes no row locks and ignores both.
ROW_ONLY = {"of": ("self",), "no_key": True}


def locked(queryset: QuerySet, pk) -> Model | None:
    """The row ``pk`` of ``queryset``, locked (:data:`ROW_ONLY`) until the
    transaction ends, with what ``queryset`` joins in read after the lock.

    Not one ``select_for_update().select_related()``: on PostgreSQL, a locking
    read that waited for another transaction sees that transaction's update of
    the locked row but not of the rows it joins, which stay as they were when
    the statement began ("it can see the effects of concurrent updating
    commands on the same rows it is trying to update, but it does not see
    effects of those commands on other rows in the database",
    https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED).
    A rolling maintenance run locked with its current drain record joined in
    read the record its previous step had just created as missing, and took
    a drain with moves still running for finished. Read after the lock, each
    statement has a fresh snapshot that holds everything committed before.
    """
    lock = queryset.model.objects.select_for_update(**ROW_ONLY).filter(pk=pk)
    if not list(lock.values_list("pk", flat=True)):
        return None
    return queryset.filter(pk=pk).first()
