"""JSON batching: POST /{version}/$batch with up to 20 requests.

As documented ("Combine multiple requests in one HTTP call using JSON
batching"): each request has `id`, `method`, a `url` relative to the version
root, optional `headers` and `body` (a JSON body needs a Content-Type
header); the answer is 200 with one `responses` entry per request, each with
its own status (so one may be 429 with Retry-After while others succeed).
Requests run one after another here, which Graph allows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.servers.graph.core import Request, Response, bad_request, json_response

MAX_REQUESTS = 20


def run(req: Request, version: str, handle: Callable[[Request], Response]) -> Response:
    body = req.json()
    items = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise bad_request("The batch needs a non-empty 'requests' array.", "BadRequest")
    if len(items) > MAX_REQUESTS:
        raise bad_request(f"The batch holds {len(items)} requests; the limit is 20.", "BadRequest")
    ids = [str(i.get("id", "")) if isinstance(i, dict) else "" for i in items]
    if "" in ids or len(set(ids)) != len(ids):
        raise bad_request("Every batch request needs a unique 'id'.", "BadRequest")
    return json_response(200, {"responses": [_one(req, version, i, handle) for i in items]})


def _one(
    outer: Request, version: str, item: dict[str, Any], handle: Callable[[Request], Response]
) -> dict[str, Any]:
    url, method = str(item.get("url", "")), str(item.get("method", "")).upper()
    headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    if "body" in item and "content-type" not in headers:
        raise bad_request(
            f"Batch request {item['id']}: a body needs a Content-Type header.", "BadRequest"
        )
    if method not in ("GET", "POST", "PATCH", "PUT", "DELETE") or not url.startswith("/"):
        raise bad_request(f"Batch request {item['id']}: bad method or url.", "BadRequest")
    parts = urlsplit(f"/{version}{url}")
    sub = Request(
        method,
        parts.path,
        [unquote(s) for s in parts.path.split("/") if s],
        dict(parse_qsl(parts.query)),
        {**headers, "authorization": outer.headers.get("authorization", "")},
        json.dumps(item["body"]).encode() if "body" in item else b"",
        outer.base,
    )
    resp = handle(sub)
    out: dict[str, Any] = {
        "id": str(item["id"]),
        "status": resp.status,
        "headers": {k: v for k, v in resp.headers.items()},
    }
    if resp.body:
        out["body"] = json.loads(resp.body) if resp.body.startswith(b"{") else resp.body.decode()
    return out
