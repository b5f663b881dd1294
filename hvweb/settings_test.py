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

# The suite serves static files straight from the finders, so it needs no
# collectstatic; hvweb/tests/test_static.py collects with the console's own
# storage (hashed names, gzip) and checks what WhiteNoise sends.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Hashing at full strength only slows the suite down.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# daphne and Celery processes outlive the flushes between transactional tests,
# which give content types new ids: see hvweb.audit.apps.
HVWEB_FORGET_CONTENT_TYPES = True
