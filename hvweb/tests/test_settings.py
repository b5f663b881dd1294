"""Settings pick the database and Redis from the environment, and nothing else."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "host": db.get("HOST", ""),
    "redis_url": settings.REDIS_URL, "embedded": settings.REDIS_EMBEDDED,
    "broker": settings.CELERY_BROKER_URL,
    "layer_hosts": [
        h["address"] for h in settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    ],
    "debug": settings.DEBUG, "secret_len": len(settings.SECRET_KEY),
    "allowed_hosts": settings.ALLOWED_HOSTS,
}))
"""


def run_probe(tmp_path, code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh process with the settings from ``env`` alone."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}
    }
    clean.update(HVWEB_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="hvweb.settings")
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean,
        capture_output=True, text=True,
    )  # fmt: skip


def probe(tmp_path, **env):
    out = run_probe(tmp_path, PROBE, **env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_without_environment_it_is_sqlite_and_the_embedded_redis(tmp_path):
    s = probe(tmp_path)
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"] == str(tmp_path / "hvweb.sqlite3")
    assert s["embedded"] is True
    assert s["redis_url"] == f"unix://{tmp_path}/redis.sock"
    assert s["broker"] == f"redis+socket://{tmp_path}/redis.sock"
    assert s["layer_hosts"] == [s["redis_url"]]
    assert s["debug"] is False
    assert s["allowed_hosts"] == ["127.0.0.1", "localhost", "[::1]"]


def test_database_url_selects_postgresql_and_redis_url_a_real_redis(tmp_path):
    s = probe(
        tmp_path,
        DATABASE_URL="postgresql://app@db.example:5432/hvweb",
        REDIS_URL="redis://cache.example:6379/3",
    )
    assert s["engine"] == "django.db.backends.postgresql"
    assert (s["name"], s["host"]) == ("hvweb", "db.example")
    assert s["embedded"] is False
    assert s["broker"] == "redis://cache.example:6379/3"
    assert s["layer_hosts"] == ["redis://cache.example:6379/3"]


def test_secret_key_is_generated_once_into_the_data_folder(tmp_path):
    first = probe(tmp_path)
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert first["secret_len"] >= 50
    key = key_file.read_text()
    probe(tmp_path)
    assert key_file.read_text() == key


def test_secret_key_debug_and_hosts_come_from_the_environment(tmp_path):
    s = probe(tmp_path, SECRET_KEY="x" * 60, DEBUG="1", ALLOWED_HOSTS="a.example,b")
    assert s["secret_len"] == 60 and s["debug"] is True
    assert s["allowed_hosts"] == ["a.example", "b"]
    assert not (tmp_path / "secret_key").exists()


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env.update(
        HVWEB_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="hvweb.settings",
        SECRET_KEY="k" * 20 + "-production-secret-" + "z" * 30,
        ALLOWED_HOSTS="hvweb.example.com",
        HVWEB_HTTPS="1",
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_an_idle_consumer_outlives_the_channel_layers_blocking_read(redis_url):
    """A websocket nobody sends to for a while must stay open: the layer's read
    outlasts the 5 s that channels-redis blocks for the next message."""
    import asyncio

    from channels_redis.core import RedisChannelLayer
    from django.conf import settings

    async def idle() -> str:
        layer = RedisChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
        channel = await layer.new_channel()
        try:
            await asyncio.wait_for(layer.receive(channel), 7)
        except TimeoutError:
            return "still waiting"
        finally:
            await layer.close_pools()
        return "received"

    assert asyncio.run(idle()) == "still waiting"


GC_PROBE = """
import gc
import hvweb.asgi
print(*gc.get_threshold(), gc.get_freeze_count())
"""


def test_the_web_process_freezes_start_up_and_collects_less_often(tmp_path):
    default = run_probe(tmp_path, GC_PROBE)
    *threshold, frozen = map(int, default.stdout.split())
    assert threshold == [50_000, 20, 10]
    assert frozen > 10_000  # Django, Channels and the app's modules, kept out of scans
    assert run_probe(
        tmp_path, GC_PROBE, HVWEB_GC_THRESHOLD="12345, 6, 7"
    ).stdout.split()[:3] == ["12345", "6", "7"]


def test_a_malformed_gc_threshold_is_refused_by_name(tmp_path):
    for bad in ("fast", "700,10", "700,0,10"):
        out = run_probe(tmp_path, GC_PROBE, HVWEB_GC_THRESHOLD=bad)
        assert out.returncode != 0
        assert "HVWEB_GC_THRESHOLD: three whole numbers" in out.stderr
