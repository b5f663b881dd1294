"""Schemathesis against ``/api/schema/`` on the demo inventory: no server error.

daphne serves the real ASGI application on the test database (with a Celery
queue of its own that no worker reads, so the moves the fuzzer starts stay
records and never run); schemathesis
generates requests for every operation (valid and malformed: wrong types,
missing fields, odd strings, huge numbers, unknown ids, wrong media types) as
the demo administrator, and runs every check: no 5xx, every status code,
content type, header and body as the schema documents, malformed input
refused, well-formed input accepted, deleted objects gone, created ones
there. Bounded: ``HVWEB_FUZZ_EXAMPLES`` cases per operation and phase (20 by
default), a fixed seed (``HVWEB_FUZZ_SEED``) so that a failure replays.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.contrib.auth import get_user_model

from conftest import daphne, database_url_for_children
from hvweb.api.models import ApiToken
from hvweb.inventory import demo

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "var" / "test" / "schemathesis.log"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def fuzz_command():
    spec = importlib.util.spec_from_file_location(
        "fuzz_api", ROOT / "scripts" / "fuzz_api.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.command


@pytest.fixture
def fuzz_url(django_db_blocker, redis_url):
    """daphne on the test database, enqueueing moves where no worker listens."""
    with django_db_blocker.unblock():
        database_url = database_url_for_children()
    queue = f"fuzz-unworked-{uuid.uuid4().hex[:8]}"
    with daphne(database_url, "fuzz-daphne.log", HVWEB_QUEUE=queue) as url:
        yield url
        redis.Redis.from_url(redis_url).delete(queue)


def test_fuzzing_the_api_finds_no_server_error_and_breaks_no_check(fuzz_url):
    demo.seed(write=lambda *_: None)
    admin = get_user_model().objects.get(username="demo-admin")
    _, token = ApiToken.objects.issue(admin)
    examples = int(os.environ.get("HVWEB_FUZZ_EXAMPLES") or 20)
    seed = int(os.environ.get("HVWEB_FUZZ_SEED") or 1)
    started = time.monotonic()
    out = subprocess.run(
        fuzz_command()(fuzz_url, token, examples, seed),
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    LOG.write_text(out.stdout + out.stderr + f"\nwall time: {elapsed:.1f} s\n")
    summary = out.stdout[out.stdout.rfind("SUMMARY") :]
    assert out.returncode == 0, f"see {LOG}\n{summary}"
    cases = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert cases and cases[1] == cases[2] and int(cases[1]) > 500, summary
    # Every operation but revoking the token was reached.
    selected, total = map(int, re.search(r"Selected: (\d+)/(\d+)", summary).groups())
    tested = int(re.search(r"Tested: (\d+)", summary)[1])
    assert tested == selected == total - 1, summary
