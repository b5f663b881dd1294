"""Settings for the test suite: the normal ones, on a data folder of their own.

A separate folder keeps the suite's SQLite file and embedded Redis socket away
from a console started from the same checkout.
"""

import os
from pathlib import Path

os.environ.setdefault(
    "HVWEB_DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test")
)

from .settings import *  # noqa: E402,F403

# Hashing at full strength only slows the suite down.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# daphne and Celery processes outlive the flushes between transactional tests,
# which give content types new ids: see hvweb.audit.apps.
HVWEB_FORGET_CONTENT_TYPES = True
