"""Bring in a real Hyper-V cluster from what PowerShell writes.

``document`` (pure: bytes to a checked :class:`ClusterExport`, or every problem
with its path in the file), ``enums`` (PowerShell's numbers and names, with
their sources), ``psjson`` (JSON laid out as ConvertTo-Json lays it out) are
standard library only. ``plan`` compares an export with the inventory (the dry
run), ``apply`` writes it in one transaction, ``export`` writes the inventory
back in the same format.
"""
