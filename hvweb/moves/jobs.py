"""Whether a dispatched move's job is still in the broker.

A move handed to the job queue is "running" but unclaimed until a worker takes
it. If the broker loses the job (Redis flushed, or restarted without
persistence, as the embedded one is), no worker ever will, and no heartbeat
goes stale either: the reaper (:func:`hvweb.moves.tasks.reap_lost_migrations`)
asks here and fails such a move.

Celery on Redis (kombu's Redis transport, ``kombu/transport/redis.py``) keeps a
waiting job in the list named after its queue (one list per priority step),
and a job a worker has taken but not acknowledged (acks late: until the move
ends) in the ``unacked`` hash. A job is lost when it is in neither.
"""

from __future__ import annotations

import time

from celery import current_app

__all__ = ["missing"]

#: Between kombu popping a job from its list and storing it as unacknowledged
#: it is briefly in neither: a job must be missing twice, this far apart.
SECOND_LOOK_S = 0.5


def missing(jobs: dict[str, str]) -> set[str]:
    """Of ``jobs`` (job id: queue), those the broker holds nowhere.

    Raises the broker's error when it does not answer: nothing is lost then
    that can be told.
    """
    if not jobs:
        return set()
    with current_app.connection_for_read() as connection:
        channel = connection.default_channel
        client = channel.client
        prefix = getattr(channel, "global_keyprefix", "") or ""

        def absent(among: dict[str, str]) -> set[str]:
            queues = {queue for queue in among.values()}
            held = list(client.hvals(prefix + channel.unacked_key))
            for queue in queues:
                for step in channel.priority_steps:
                    held += client.lrange(
                        prefix + channel._q_for_pri(queue, step), 0, -1
                    )
            blob = b"\n".join(held)
            return {job for job in among if f'"{job}"'.encode() not in blob}

        gone = absent(jobs)
        if gone:
            time.sleep(SECOND_LOOK_S)
            gone = absent({job: jobs[job] for job in gone})
    return gone
