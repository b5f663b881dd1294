"""Where a dispatched move's job is: waiting, taken by a live worker, or lost.

A move handed to the job queue is "running" but unclaimed until a worker takes
it. Two ways lose it without any heartbeat going stale, and the reaper
(:func:`hvweb.moves.tasks.reap_lost_migrations`) asks here for both:

- the broker loses the job (Redis flushed, or restarted without persistence,
  as the embedded one is): no worker ever will take it (:func:`missing`);
- a worker took the job and died before it started the move (killed between
  fetching the job and claiming the move): the job sits in kombu's
  ``unacked`` hash, given back to the queue only after the transport's
  visibility timeout (an hour by default), so the move would wait that long
  (:func:`orphaned`).

Celery on Redis (kombu's Redis transport, ``kombu/transport/redis.py``) keeps a
waiting job in the list named after its queue (one list per priority step),
and a job a worker has taken but not acknowledged (acks late: until the move
ends) in the ``unacked`` hash, which does not say which worker holds it. The
live workers say which jobs they hold: Celery's remote control ``inspect``
(``reserved`` then ``active``; docs.celeryq.dev, "Workers Guide: Inspecting
workers").
"""

from __future__ import annotations

import time

from celery import current_app

__all__ = ["lost", "missing", "orphaned", "taken"]

#: Between kombu popping a job from its list and storing it as unacknowledged
#: it is briefly in neither: a job must be missing twice, this far apart.
SECOND_LOOK_S = 0.5
#: How long the live workers have to answer an inspect broadcast.
INSPECT_TIMEOUT_S = 1.0


def _held(jobs: dict[str, str]) -> tuple[set[str], set[str]]:
    """Of ``jobs`` (job id: queue), those waiting in their queue's lists and
    those a worker took (in the ``unacked`` hash)."""
    with current_app.connection_for_read() as connection:
        channel = connection.default_channel
        client = channel.client
        prefix = getattr(channel, "global_keyprefix", "") or ""
        unacked = b"\n".join(client.hvals(prefix + channel.unacked_key))
        waiting = []
        for queue in set(jobs.values()):
            for step in channel.priority_steps:
                key = prefix + channel._q_for_pri(queue, step)
                waiting += client.lrange(key, 0, -1)
    listed = b"\n".join(waiting)
    return (
        {job for job in jobs if f'"{job}"'.encode() in listed},
        {job for job in jobs if f'"{job}"'.encode() in unacked},
    )


def missing(jobs: dict[str, str]) -> set[str]:
    """Of ``jobs`` (job id: queue), those the broker holds nowhere.

    Raises the broker's error when it does not answer: nothing is lost then
    that can be told.
    """
    if not jobs:
        return set()

    def absent(among: dict[str, str]) -> set[str]:
        waiting, taken_ = _held(among)
        return set(among) - waiting - taken_

    gone = absent(jobs)
    if gone:
        time.sleep(SECOND_LOOK_S)
        gone = absent({job: jobs[job] for job in gone})
    return gone


def taken(jobs: dict[str, str]) -> set[str]:
    """Of ``jobs``, those a worker took and has not acknowledged."""
    return _held(jobs)[1] if jobs else set()


def _live_jobs() -> set[str]:
    """The ids of the jobs the live workers hold (reserved or running).

    ``reserved`` is asked first: a job going from reserved to active between
    the two answers is then seen by the second.
    """
    inspect = current_app.control.inspect(timeout=INSPECT_TIMEOUT_S)
    ids: set[str] = set()
    for ask in (inspect.reserved, inspect.active):
        for requests in (ask() or {}).values():
            ids |= {request.get("id") for request in requests}
    return ids


def orphaned(jobs: dict[str, str]) -> set[str]:
    """Of ``jobs``, those a worker took (unacknowledged) that no live worker
    holds: their worker died before starting them.

    Looked at twice, :data:`SECOND_LOOK_S` apart, so a job a worker is just
    fetching is not counted. Raises the broker's error when it does not answer.
    """
    candidates = taken(jobs) - _live_jobs() if jobs else set()
    if candidates:
        time.sleep(SECOND_LOOK_S)
        again = {job: jobs[job] for job in candidates}
        candidates = taken(again) - _live_jobs()
    return candidates


def lost(jobs: dict[str, str]) -> tuple[set[str], set[str]]:
    """Of ``jobs``, those the broker holds nowhere (:func:`missing`) and those
    taken by a worker that is gone (:func:`orphaned`). Raises the broker's
    error when it does not answer."""
    gone = missing(jobs)
    return gone, orphaned({job: q for job, q in jobs.items() if job not in gone})
