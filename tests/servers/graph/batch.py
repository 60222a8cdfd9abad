"""JSON batching: POST /{version}/$batch with up to 20 requests.

As documented ("Combine multiple HTTP requests using JSON batching",
learn.microsoft.com/graph/json-batching): each request has `id`, `method`,
a `url` relative to the version root, optional `headers` and `body` (a body
needs a Content-Type header) and optional `dependsOn` (ids of requests that
must run first); the answer is 200 with one `responses` entry per request,
each with its own status (one may be 429 with Retry-After while others
succeed). "If an individual request fails, any request that depends on that
request fails with status code 424 (Failed Dependency)."

Order of execution, as the Outlook throttling page says: without `dependsOn`
"the service executes up to 4 requests in parallel at any point" (here: 4
threads, each request counted against the mailbox's concurrency like any
other, so a batch next to other requests can earn 429s); with `dependsOn`
one at a time. "Batch should be either fully sequential or fully parallel":
a batch that mixes the two, or names an unknown or later id, is refused (400).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.servers.graph.core import Request, Response, bad_request, json_response

MAX_REQUESTS = 20
PARALLEL = 4


def run(req: Request, version: str, handle: Callable[[Request], Response]) -> Response:
    body = req.json()
    items = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise bad_request("The batch needs a non-empty 'requests' array.", "BadRequest")
    if len(items) > MAX_REQUESTS:
        raise bad_request(f"The batch holds {len(items)} requests; the limit is 20.", "BadRequest")
    ids = [str(i.get("id", "")) for i in items]
    if "" in ids or len(set(ids)) != len(ids):
        raise bad_request("Every batch request needs a unique 'id'.", "BadRequest")
    subs = [_sub(req, version, i) for i in items]
    if any("dependsOn" in i for i in items):
        return json_response(200, {"responses": _in_order(items, subs, handle)})
    with ThreadPoolExecutor(PARALLEL) as pool:
        answers = list(pool.map(lambda n: _answer(items[n], handle(subs[n])), range(len(items))))
    return json_response(200, {"responses": answers})


def _in_order(
    items: list[dict[str, Any]], subs: list[Request], handle: Callable[[Request], Response]
) -> list[dict[str, Any]]:
    """Run a sequential batch; a request whose dependency failed gets 424 unrun."""
    seen: dict[str, int] = {}
    out = []
    for item, sub in zip(items, subs, strict=True):
        deps = item.get("dependsOn")
        alone = deps is None and not seen  # the first request may stand alone
        if not alone and (not isinstance(deps, list) or not deps
                          or any(str(d) not in seen for d in deps)):  # fmt: skip
            raise bad_request(
                f"Batch request {item['id']}: 'dependsOn' must name earlier requests "
                "(a batch is either fully sequential or fully parallel).",
                "BadRequest",
            )
        if any(not 200 <= seen[str(d)] < 300 for d in deps or []):
            error = {"code": "FailedDependency", "message": "A request it depends on failed."}
            answer = {"id": str(item["id"]), "status": 424, "headers": {}, "body": {"error": error}}
        else:
            answer = _answer(item, handle(sub))
        seen[str(item["id"])] = int(answer["status"])
        out.append(answer)
    return out


def _sub(outer: Request, version: str, item: dict[str, Any]) -> Request:
    url, method = str(item.get("url", "")), str(item.get("method", "")).upper()
    headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    if "body" in item and "content-type" not in headers:
        raise bad_request(
            f"Batch request {item['id']}: a body needs a Content-Type header.", "BadRequest"
        )
    if method not in ("GET", "POST", "PATCH", "PUT", "DELETE") or not url.startswith("/"):
        raise bad_request(f"Batch request {item['id']}: bad method or url.", "BadRequest")
    parts = urlsplit(f"/{version}{url}")
    return Request(
        method,
        parts.path,
        [unquote(s) for s in parts.path.split("/") if s],
        dict(parse_qsl(parts.query)),
        {**headers, "authorization": outer.headers.get("authorization", "")},
        json.dumps(item["body"]).encode() if "body" in item else b"",
        outer.base,
    )


def _answer(item: dict[str, Any], resp: Response) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(item["id"]),
        "status": resp.status,
        "headers": dict(resp.headers),
    }
    if resp.body:
        out["body"] = json.loads(resp.body) if resp.body.startswith(b"{") else resp.body.decode()
    return out
