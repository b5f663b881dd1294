#!/usr/bin/env python3
"""Fuzz a running console's API with schemathesis, every check on.

    python scripts/fuzz_api.py http://127.0.0.1:8000 demo-admin PASSWORD [-n 50]

Trades the user name and password for an API token, runs ``st run`` against
``/api/schema/`` with ``hvweb/tests/schemathesis.toml`` (never revoking its own
token) and exits with schemathesis' status. The test suite runs the same thing
on the demo inventory (``hvweb/tests/test_api_fuzz.py``); this script is for a
longer run by hand. It changes and deletes objects: point it at a throwaway
console, never at a real one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "hvweb" / "tests" / "schemathesis.toml"


def get_token(base_url: str, username: str, password: str) -> str:
    request = urllib.request.Request(
        f"{base_url}/api/token/",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["token"]


def command(base_url: str, token: str, examples: int, seed: int) -> list[str]:
    """The ``st run`` command line (also used by the test suite)."""
    st = Path(sys.executable).with_name("st")
    return [
        str(st), "--config-file", str(CONFIG), "run", f"{base_url}/api/schema/",
        "--checks", "all",
        # Revoking the token would end the run's authentication half-way.
        "--exclude-operation-id", "token_destroy",
        "--header", f"Authorization: Token {token}",
        "--max-examples", str(examples), "--seed", str(seed),
        "--workers", "2", "--generation-database", "none", "--no-color",
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8000")
    parser.add_argument("username")
    parser.add_argument("password")
    parser.add_argument("-n", "--max-examples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    base_url = args.base_url.rstrip("/")
    token = get_token(base_url, args.username, args.password)
    return subprocess.call(command(base_url, token, args.max_examples, args.seed))


if __name__ == "__main__":
    sys.exit(main())
