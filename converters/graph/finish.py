"""The second request of a Graph mail delivery: PATCH what MIME cannot carry.

An item made from MIME (importMime or a draft) gets its read state, flag,
categories and pstkit's stamped key in one PATCH (Graph's "Update message",
`PATCH /users/{id}/messages/{id}`, Mail.ReadWrite). The PATCHes of a batch go
in JSON `$batch` calls of at most 20 requests ("JSON batch requests are
currently limited to 20 individual requests"), each chained with `dependsOn`
so Outlook runs them one at a time and one call holds one of the mailbox's 4
concurrent slots ("Use the dependsOn property for each batch request and have
up to 4 such batch requests running concurrently"). The items are spread
evenly over a multiple of 4 calls, so the 4 slots finish together.

A PATCH may run twice harmlessly (same values), so a lost `$batch` answer is
simply sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from typing import Any
from urllib.parse import quote

from pstkit.converters.graph.client import ApiError, GraphHttp, answer_error

MAX_BATCH = 20  # Graph's limit on requests in one JSON batch
SLOTS = 4  # Exchange Online: concurrent requests per mailbox


def spread(n: int, slots: int = SLOTS, most: int = MAX_BATCH) -> list[range]:
    """Split range(n) into even chunks of <= `most`, as many as a multiple of `slots`
    (but no more than n), so parallel calls take about the same time (pure)."""
    if n <= 0:
        return []
    calls = -(-n // most)
    calls = min(n, -(-calls // slots) * slots)
    size, extra = divmod(n, calls)
    out, start = [], 0
    for i in range(calls):
        end = start + size + (1 if i < extra else 0)
        out.append(range(start, end))
        start = end
    return out


def patch_request(user: str, n: int, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """One PATCH as a JSON batch request (url relative to the version root)."""
    return {
        "id": str(n),
        "method": "PATCH",
        "url": f"/users/{quote(user)}/messages/{quote(item_id)}",
        "headers": {"Content-Type": "application/json"},
        "body": body,
    }


class Finisher:
    def __init__(self, api: GraphHttp, root: str, user: str, pool: Executor) -> None:
        self._api, self._root, self._user, self._pool = api, root, user, pool

    def finish(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
        """PATCH each (item id, body); one error text per item ("" = done), in order."""
        if len(items) == 1:
            return [self._one(*items[0])]
        parts = spread(len(items))
        answers: Iterable[list[str]] = self._pool.map(
            lambda part: self._batch([items[i] for i in part]), parts
        )
        return [text for chunk in answers for text in chunk]

    def _one(self, item_id: str, body: dict[str, Any]) -> str:
        url = f"{self._root}/users/{quote(self._user)}/messages/{quote(item_id)}"
        return _guard(lambda: self._api.call("PATCH", url, json=body))

    def _batch(self, items: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
        reqs = [patch_request(self._user, n, i, b) for n, (i, b) in enumerate(items)]
        out: list[str] = []

        def run() -> str:
            answers = self._api.batch(self._root, reqs, sequential=True)
            for n in range(len(items)):
                r = answers.get(str(n), {})
                out.append("" if 200 <= int(r.get("status", 0)) < 300 else str(answer_error(r)))
            return ""

        failed = _guard(run)
        return out if not failed else [failed] * len(items)


def _guard(fn: Callable[[], Any]) -> str:
    """Empty when `fn` succeeds, else why not (a Graph error for these items only)."""
    try:
        fn()
    except ApiError as e:
        return str(e)
    return ""
