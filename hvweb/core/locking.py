"""How the console locks a row while it decides: that row alone, weakly."""

#: ``select_for_update(**ROW_ONLY)`` locks only the queried model's rows, not
#: those ``select_related`` joins in, and as PostgreSQL's FOR NO KEY UPDATE,
#: which still lets other transactions insert rows that refer to them (a move
#: naming a host, a move's events). Locking the joined hosts and clusters too
#: let a drain (host, then VM) and "configure HA" (VM with its host) deadlock;
#: the API fuzzer found it. SQLite takes no row locks and ignores both.
ROW_ONLY = {"of": ("self",), "no_key": True}
