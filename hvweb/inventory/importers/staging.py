"""Keep an uploaded export between its dry run and its apply (the import page).

The page shows the dry run of the uploaded file; "Apply" must apply that same
file, which the browser cannot send again. The bytes wait in Redis (shared by
every daphne process behind the proxy) for an hour under a random token, with
the user and team they were uploaded for.
"""

from __future__ import annotations

import json
import secrets

import redis
from django.conf import settings

TTL_S = 3600
_PREFIX = "hvweb:import:"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)


def stage(data: bytes, *, user_id: int, team_id: int, file_name: str) -> str:
    """Keep ``data``; the token that fetches it back."""
    token = secrets.token_urlsafe(24)
    meta = json.dumps({"user": user_id, "team": team_id, "name": file_name})
    key = _PREFIX + token
    with _client().pipeline() as pipe:
        pipe.hset(key, mapping={"meta": meta, "data": data})
        pipe.expire(key, TTL_S)
        pipe.execute()
    return token


def fetch(token: str, *, user_id: int) -> tuple[bytes, int, str] | None:
    """``(data, team id, file name)`` this user staged; None if gone or not theirs."""
    if not token or len(token) > 64:
        return None
    meta, data = _client().hmget(_PREFIX + token, ["meta", "data"])
    if meta is None or data is None:
        return None
    info = json.loads(meta)
    if info["user"] != user_id:
        return None
    return data, info["team"], info["name"]


def discard(token: str) -> None:
    _client().delete(_PREFIX + token)
