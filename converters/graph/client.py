"""Graph over httpx: bearer tokens, the per-mailbox concurrency cap, throttling.

Every request holds one of `concurrency` (<= 4, Exchange Online's per-mailbox
limit) slots, so extra pipeline threads wait here instead of earning 429s.
429/503/504 are retried after Retry-After (not counted as failures while the
server keeps asking us to wait); 401 gets one fresh token; a POST whose
outcome is unknown (connection lost, 5xx after sending) raises `Ambiguous`
so the caller can look for the stamped key before sending it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import httpx

from pstkit.errors import AuthError, ConnectError, TLSError, TransientError

log = logging.getLogger("pstkit.graph")

RETRY_STATUS = (429, 503, 504)
MAX_THROTTLED = 60  # consecutive 429/503 answers to one request before giving up
MAX_FAULTS = 4  # transport errors / 5xx on idempotent requests
MAX_WAIT = 120.0


class ApiError(Exception):
    """A Graph error answer that retrying will not fix (4xx, or 5xx after retries)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status, self.code, self.message = status, code, message

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code}: {self.message}"


class Ambiguous(Exception):
    """The server may or may not have carried out this POST."""


def error_of(resp: httpx.Response) -> ApiError:
    try:
        err = resp.json().get("error", {})
        code, message = str(err.get("code", "")), str(err.get("message", ""))
    except (ValueError, AttributeError):
        code, message = "", resp.text[:200]
    return ApiError(resp.status_code, code, " ".join(message.split()))


def answer_error(answer: dict[str, Any]) -> ApiError:
    """The error of one JSON batch answer."""
    body = answer.get("body")
    err = body.get("error", {}) if isinstance(body, dict) else {}
    err = err if isinstance(err, dict) else {}
    code, message = str(err.get("code", "")), str(err.get("message", ""))
    return ApiError(int(answer.get("status", 0)), code, " ".join(message.split()))


def is_tls_failure(e: Exception) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" in str(e) or "SSL" in type(e.__context__).__name__


def transport_error(where: str, e: Exception) -> ConnectError:
    """A network failure as the user should see it: TLS problems get their own hint."""
    if is_tls_failure(e):
        return TLSError(where, str(e) or type(e).__name__)
    return ConnectError(where, str(e) or type(e).__name__)


def retry_after(resp: httpx.Response, attempt: int) -> float:
    value = resp.headers.get("Retry-After", "")
    if value.strip().isdigit():
        return min(float(value), MAX_WAIT)
    return min(2.0 ** min(attempt, 6), MAX_WAIT)  # no hint: capped exponential backoff


def chain(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests with `dependsOn` naming each one's predecessor (a sequential batch)."""
    out = [dict(requests[0])] if requests else []
    out += [{**req, "dependsOn": [str(prev["id"])]} for prev, req in pairwise(requests)]
    return out


class GraphHttp:
    def __init__(
        self,
        http: httpx.Client,
        token: Callable[..., str],
        *,
        concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self._token = token
        self._slots = threading.BoundedSemaphore(concurrency)
        self._sleep = sleep
        self.stats = {"throttled": 0, "retried": 0, "requests": 0}
        self._stats_lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1

    def _send(self, method: str, url: str, fresh: bool, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", None) or {})
        headers["Authorization"] = "Bearer " + self._token(fresh=fresh)
        self._count("requests")
        with self._slots:
            return self.http.request(method, url, headers=headers, **kw)

    def call(
        self, method: str, url: str, *, idempotent: bool | None = None, **kw: Any
    ) -> httpx.Response:
        """One Graph call with retries; returns a 2xx response or raises.

        `idempotent` (default: by method) says whether sending it twice is harmless.
        """
        if idempotent is None:
            idempotent = method in ("GET", "DELETE", "PATCH", "PUT")
        where = url.split("?", maxsplit=1)[0]
        throttled = faults = 0
        fresh = False
        while True:
            try:
                resp = self._send(method, url, fresh, **kw)
            except httpx.TransportError as e:
                faults += 1
                if not idempotent and not isinstance(e, httpx.ConnectError):
                    raise Ambiguous(str(e) or type(e).__name__) from e
                if faults > MAX_FAULTS or is_tls_failure(e):
                    raise transport_error(where, e) from e
                self._count("retried")
                self._sleep(min(2.0**faults, MAX_WAIT))
                continue
            except httpx.HTTPError as e:  # bad URL, undecodable answer: retrying won't help
                raise ConnectError(where, str(e) or type(e).__name__) from e
            if resp.is_success:
                return resp
            if resp.status_code == 401 and not fresh:
                fresh = True  # the token may have expired or been revoked: get a new one once
                continue
            if resp.status_code in RETRY_STATUS:
                throttled += 1
                self._throttled(resp, where, throttled, idempotent)
                continue
            if resp.status_code >= 500 and idempotent and faults < MAX_FAULTS:
                faults += 1
                self._sleep(min(2.0**faults, MAX_WAIT))
                continue
            if resp.status_code == 401:
                raise AuthError(where, str(error_of(resp)))
            raise error_of(resp)

    def _throttled(self, resp: httpx.Response, where: str, n: int, idempotent: bool) -> None:
        """Wait as told, or raise when waiting is wrong (ambiguous POST) or hopeless."""
        if resp.status_code != 429 and not idempotent:
            raise Ambiguous(str(error_of(resp)))  # a 503/504 may come after the work was done
        if n > MAX_THROTTLED:
            raise TransientError(where, str(error_of(resp)))
        self._count("throttled")
        self._sleep(retry_after(resp, n))

    def batch(
        self, root: str, requests: list[dict[str, Any]], *, sequential: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Idempotent requests (<= 20) in one JSON $batch call; throttled ones go again.

        Returns each request's answer by id. Only for requests that may safely
        run twice: a lost batch answer is resent whole. `sequential` chains them
        with `dependsOn`, so Outlook runs them one at a time and the batch takes
        one of the mailbox's 4 concurrent slots, as this client counts it (without
        it Outlook runs up to 4 of them at once). In a chain a failed request
        fails the rest with 424 (Failed Dependency): those had no effect and go
        again in the next round.
        """
        done: dict[str, dict[str, Any]] = {}
        todo = list(requests)
        for n in range(1, MAX_THROTTLED + 1):
            body = {"requests": chain(todo) if sequential else todo}
            answer = self.json("POST", f"{root}/$batch", json=body, idempotent=True)
            wait, again = 0.0, set()
            for r in answer.get("responses", []):
                if r.get("status") == 424:
                    again.add(str(r.get("id")))
                elif r.get("status") in RETRY_STATUS:
                    again.add(str(r.get("id")))
                    hint = str((r.get("headers") or {}).get("Retry-After", ""))
                    wait = max(wait, float(hint) if hint.isdigit() else 2.0 ** min(n, 6))
                else:
                    done[str(r.get("id"))] = r
            todo = [q for q in todo if str(q["id"]) in again]
            if not todo:
                return done
            if wait:
                self._count("throttled")
                self._sleep(min(wait, MAX_WAIT))
        raise TransientError(f"{root}/$batch", "requests kept being throttled")

    def json(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        resp = self.call(method, url, **kw)
        return dict(resp.json()) if resp.content else {}

    def pages(self, url: str, params: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following @odata.nextLink."""
        page = self.json("GET", url, params=params or {})
        while True:
            yield from page.get("value", [])
            nxt = page.get("@odata.nextLink")
            if not nxt:
                return
            page = self.json("GET", str(nxt))

    def put_raw(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """PUT to a pre-authenticated upload URL: no Authorization header (Graph's rule)."""
        for attempt in range(1, MAX_THROTTLED + 1):
            with self._slots:
                try:
                    resp = self.http.put(url, content=content, headers=headers)
                except httpx.TransportError as e:
                    raise Ambiguous(str(e) or type(e).__name__) from e
            if resp.status_code not in RETRY_STATUS:
                if not resp.is_success:
                    raise error_of(resp)
                return resp
            self._sleep(retry_after(resp, attempt))
        raise TransientError(url.split("?", maxsplit=1)[0], "upload kept being throttled")
