"""The batch state records in Redis, readable from any machine.

Keys (all under `pstkit:` in the broker's database, persisted with it):

    pstkit:batches          sorted set: batch id -> submission time
    pstkit:batch:ID:meta    hash: submitted, kind, mailboxes, by (host)
    pstkit:batch:ID         hash: mailbox -> its state record (JSON, see `state`)

A record is updated with WATCH/MULTI (optimistic), so two workers writing
the same mailbox (a redelivered job) never lose each other's update; the
merge rule in `state.merge` decides which one wins.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from pstkit.batch import state
from pstkit.errors import ConnectError

log = logging.getLogger("pstkit")
INDEX = "pstkit:batches"
DOWN = (redis.ConnectionError, redis.TimeoutError)


def _key(batch_id: str) -> str:
    return f"pstkit:batch:{batch_id}"


class Board:
    def __init__(self, url: str) -> None:
        self.url = url
        self.r: Any = redis.Redis.from_url(
            url, socket_timeout=10, socket_connect_timeout=5, decode_responses=True
        )

    def create(self, batch_id: str, records: Sequence[Mapping[str, Any]],
               meta: Mapping[str, str]) -> None:  # fmt: skip
        with self.r.pipeline() as p:
            p.hset(_key(batch_id), mapping={str(r["key"]): json.dumps(r) for r in records})
            p.hset(_key(batch_id) + ":meta", mapping=dict(meta))
            p.zadd(INDEX, {batch_id: time.time()})
            p.execute()

    def update(self, batch_id: str, key: str, update: Mapping[str, Any]) -> None:
        def apply(pipe: Any) -> None:
            raw = pipe.hget(_key(batch_id), key)
            old = json.loads(raw) if raw else {"key": key}
            pipe.multi()
            pipe.hset(_key(batch_id), key, json.dumps(state.merge(old, update)))

        self.r.transaction(apply, _key(batch_id))

    def update_surely(self, batch_id: str, key: str, update: Mapping[str, Any],
                      patience: float = 600.0) -> None:  # fmt: skip
        """A final update waits for a restarting broker (the job is done: its
        outcome must not be lost to a broker that is briefly away)."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return self.update(batch_id, key, update)
            except DOWN:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def records(self, batch_id: str) -> list[dict[str, Any]]:
        raw = self.r.hgetall(_key(batch_id))
        return [json.loads(v) for _, v in sorted(raw.items())]

    def meta(self, batch_id: str) -> dict[str, str]:
        raw = self.r.hgetall(_key(batch_id) + ":meta")
        return {str(k): str(v) for k, v in raw.items()}

    def batches(self, limit: int = 20) -> list[str]:
        """The newest batches first."""
        return [str(b) for b in self.r.zrevrange(INDEX, 0, limit - 1)]

    def close(self) -> None:
        self.r.close()


def check_reachable(board: Board) -> None:
    try:
        board.r.ping()
    except DOWN as e:
        raise ConnectError(board.url, f"the broker does not answer ({e})") from e
    except redis.RedisError as e:
        raise ConnectError(board.url, str(e)) from e
