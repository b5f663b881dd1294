"""Collect the static files when they changed, and only then.

The console serves its static files from ``STATIC_ROOT`` under content-hashed
names with a gzip copy beside each (WhiteNoise's
``CompressedManifestStaticFilesStorage``), so a browser keeps them for ten years
and fetches ``plotly.min.js`` (4.8 MB) once, as about 1.4 MB. Collecting them
takes several seconds (hashing, rewriting CSS references, compressing), too
long for every start: the launcher calls :func:`collect_if_changed`, which
runs ``collectstatic`` only when the files the finders list (their paths,
sizes and modification times) differ from the last collection's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management import call_command

#: Where the fingerprint of the last collection is kept, inside STATIC_ROOT.
FINGERPRINT = ".hvweb-collected"


def sources_fingerprint() -> str:
    """A digest of every static file the finders list: path, size, mtime."""
    digest = hashlib.sha256()
    entries = []
    for finder in get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):
            stat = Path(storage.path(path)).stat()
            prefix = getattr(storage, "prefix", None) or ""
            entries.append(f"{prefix}/{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    for entry in sorted(entries):
        digest.update(entry.encode() + b"\n")
    digest.update(settings.STORAGES["staticfiles"]["BACKEND"].encode())
    return digest.hexdigest()


def collect_if_changed() -> bool:
    """Run ``collectstatic`` unless STATIC_ROOT already holds these sources;
    True when it ran."""
    root = Path(settings.STATIC_ROOT)
    marker = root / FINGERPRINT
    fingerprint = sources_fingerprint()
    manifest = root / "staticfiles.json"
    if marker.exists() and manifest.exists() and marker.read_text() == fingerprint:
        return False
    call_command("collectstatic", interactive=False, verbosity=0)
    marker.write_text(fingerprint)
    return True
