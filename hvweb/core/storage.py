"""The console's static files storage: WhiteNoise's compressed manifest storage
that still renders a page when the files were never collected.

``collectstatic`` (which the launcher runs, :mod:`hvweb.core.collect`) writes
the manifest of hashed names. A process started some other way on a fresh data
folder (``manage.py check --deploy``, a probe, a shell) has none: Django's
manifest storage then fails every page with "Missing staticfiles manifest
entry". This one falls back to the plain name and says once what to run; a
manifest that lacks a file is still an error.
"""

from __future__ import annotations

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

log = logging.getLogger(__name__)


class ConsoleStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed, gzipped names; the plain name while nothing is collected."""

    _warned = False

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            if self.hashed_files:  # collected, and this file is not in it
                raise
            if not ConsoleStaticFilesStorage._warned:
                ConsoleStaticFilesStorage._warned = True
                log.warning(
                    "static files are not collected into %s: run `manage.py "
                    "collectstatic` (the launcher does at start)",
                    self.location,
                )
            return name
