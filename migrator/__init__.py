"""hvweb's simulated hypervisor: the page engine and the live-migration rules.

Standard library only: nothing here may import Django, numpy or any part of
``hvweb``. The web shell turns its rows into this package's plain snapshots.
"""
