"""The Graph test server itself: it must refuse what Graph refuses.

These talk to the server with a bare httpx client, so a client bug cannot
hide a server that accepts too much.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.servers.graph.fixtures import UPN, graph, graph_tls, options
from tests.servers.graph.server import GraphServer

__all__ = ["graph", "graph_tls"]


@pytest.fixture
def client(graph: GraphServer) -> Iterator[httpx.Client]:
    assert options(graph).client_id
    tok = graph.state.tokens
    form = {
        "grant_type": "client_credentials",
        "client_id": "pstkit-app",
        "client_secret": "test-secret-value",
        "scope": "https://graph.microsoft.com/.default",
    }
    with httpx.Client(
        verify=ssl.create_default_context(cafile=str(graph.ca_file)), base_url=graph.base
    ) as c:
        r = c.post(f"/{graph.state.tenant_id}/oauth2/v2.0/token", data=form)
        assert r.status_code == 200 and tok
        c.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        yield c


def _code(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


MIME = b"From: a@example.org\r\nSubject: s\r\nDate: Thu, 2 Jan 2020 03:04:05 +0000\r\n\r\nbody\r\n"
IMPORT = f"/beta/users/{UPN}/mailFolders/inbox/importMime"
CREATE = f"/v1.0/users/{UPN}/mailFolders/inbox/messages"


def test_auth_required(graph: GraphServer, client: httpx.Client) -> None:
    r = httpx.get(
        f"{graph.base}/v1.0/users/{UPN}/mailFolders",
        verify=ssl.create_default_context(cafile=str(graph.ca_file)),
    )
    assert _code(r) == (401, "InvalidAuthenticationToken") and "WWW-Authenticate" in r.headers
    r = client.get(f"/v1.0/users/{UPN}/mailFolders", headers={"Authorization": "Bearer junk"})
    assert _code(r) == (401, "InvalidAuthenticationToken")


TEXT = {"Content-Type": "text/plain"}
#: the request shape pstkit used to send before Microsoft documented the action
OLD_SHAPE = {"mimeContent": base64.b64encode(MIME).decode(), "isRead": True}


def test_import_mime_refuses_the_old_json_shape(client: httpx.Client) -> None:
    # As JSON: the wrong content type for an action that takes text/plain.
    assert _code(client.post(IMPORT, json=OLD_SHAPE)) == (415, "UnsupportedMediaType")
    # The same JSON text sent as text/plain is not base64 MIME.
    as_text = json.dumps(OLD_SHAPE).encode()
    assert _code(client.post(IMPORT, content=as_text, headers=TEXT)) == (
        400,
        "ErrorMimeContentInvalidBase64String",
    )
    assert client.post(IMPORT, content=b"", headers=TEXT).status_code == 400
    assert client.post(IMPORT).status_code == 415  # no content type at all


def test_import_mime_as_documented(client: httpx.Client) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    r = client.post(IMPORT, content=base64.b64encode(MIME), headers=TEXT)
    assert r.status_code == 201
    item = r.json()
    assert item["isDraft"] is False and item["id"]
    # ASSUMED (undocumented): received = the import time; sent = the Date header.
    assert datetime.fromisoformat(item["receivedDateTime"].replace("Z", "+00:00")) >= before
    assert item["sentDateTime"] == "2020-01-02T03:04:05Z"
    assert client.get(f"/v1.0/users/{UPN}/messages/{item['id']}/$value").content == MIME
    # What MIME cannot carry follows in a PATCH (Mail.ReadWrite).
    key = "String {6b0c3e1d-7a2f-4c55-9e0b-2f5d8a61c4e7} Name PstkitSourceKey"
    patch = {"isRead": True, "flag": {"flagStatus": "flagged"}, "categories": ["Red"],
             "singleValueExtendedProperties": [{"id": key, "value": "k1"}]}  # fmt: skip
    done = client.patch(f"/v1.0/users/{UPN}/messages/{item['id']}", json=patch).json()
    assert done["isRead"] is True and done["flag"]["flagStatus"] == "flagged"
    assert done["categories"] == ["Red"] and done["isDraft"] is False


def test_sequential_batch_fails_dependents_with_424(client: httpx.Client) -> None:
    made = client.post(IMPORT, content=base64.b64encode(MIME), headers=TEXT).json()["id"]
    url = f"/users/{UPN}/messages/"
    body = {"headers": {"Content-Type": "application/json"}, "body": {"isRead": True}}
    reqs = [
        {"id": "1", "method": "PATCH", "url": url + made, **body},
        {"id": "2", "method": "PATCH", "url": url + "nosuchitem", "dependsOn": ["1"], **body},
        {"id": "3", "method": "PATCH", "url": url + made, "dependsOn": ["2"], **body},
    ]
    answers = client.post("/v1.0/$batch", json={"requests": reqs}).json()["responses"]
    assert {a["id"]: a["status"] for a in answers} == {"1": 200, "2": 404, "3": 424}
    mixed = [reqs[0], {**reqs[1], "dependsOn": []}]
    assert client.post("/v1.0/$batch", json={"requests": mixed}).status_code == 400


def test_validation(client: httpx.Client) -> None:
    assert _code(client.post(CREATE, json={"subject": "s", "bogus": 1})) == (400, "RequestBodyRead")
    hdr = {"internetMessageHeaders": [{"name": "Received", "value": "x"}]}
    assert _code(client.post(CREATE, json=hdr)) == (400, "InvalidInternetMessageHeader")
    bad_prop = {"singleValueExtendedProperties": [{"id": "Integer 0x0E07", "value": "abc"}]}
    assert _code(client.post(CREATE, json=bad_prop))[0] == 400
    bad_id = {"singleValueExtendedProperties": [{"id": "Nonsense 12", "value": "1"}]}
    assert _code(client.post(CREATE, json=bad_id)) == (400, "ErrorInvalidExtendedProperty")
    big = base64.b64encode(b"x" * (3 * 1024 * 1024 + 10))
    assert _code(client.post(IMPORT, content=big, headers=TEXT))[0] == 413
    assert _code(client.get("/v1.0/users/nobody@x/mailFolders")) == (404, "ErrorInvalidUser")
    flt = {"$filter": "contains(subject,'x')"}
    assert client.get(f"{CREATE}", params=flt).status_code == 400


def test_json_create_is_a_draft_without_message_flags(client: httpx.Client) -> None:
    draft = client.post(CREATE, json={"subject": "d", "receivedDateTime": "2001-01-01T00:00:00Z"})
    assert draft.status_code == 201 and draft.json()["isDraft"] is True
    assert draft.json()["receivedDateTime"] != "2001-01-01T00:00:00Z"  # not writable
    props = [
        {"id": "Integer 0x0E07", "value": "1"},
        {"id": "SystemTime 0x0E06", "value": "2001-01-01T00:00:00Z"},
    ]
    sent = client.post(CREATE, json={"subject": "s", "singleValueExtendedProperties": props})
    assert sent.json()["isDraft"] is False and sent.json()["isRead"] is True
    assert sent.json()["receivedDateTime"] == "2001-01-01T00:00:00Z"


def test_folder_conflict_and_paging(client: httpx.Client) -> None:
    url = f"/v1.0/users/{UPN}/mailFolders/inbox/childFolders"
    for n in range(12):
        assert client.post(url, json={"displayName": f"f{n}"}).status_code == 201
    assert _code(client.post(url, json={"displayName": "F3"})) == (409, "ErrorFolderExists")
    first = client.get(url).json()
    assert len(first["value"]) == 10 and "@odata.nextLink" in first
    rest = client.get(first["@odata.nextLink"]).json()
    assert len(rest["value"]) == 2 and "@odata.nextLink" not in rest


def test_import_mime_toggle(graph: GraphServer, client: httpx.Client) -> None:
    body = base64.b64encode(MIME)
    assert client.post(IMPORT, content=body, headers=TEXT).status_code == 201
    v1 = client.post(IMPORT.replace("/beta/", "/v1.0/"), content=body, headers=TEXT)
    assert _code(v1) == (400, "BadRequest") and "segment 'importMime'" in v1.text
    graph.state.import_mime = 404
    assert _code(client.post(IMPORT, content=body, headers=TEXT)) == (404, "ResourceNotFound")
    graph.state.import_mime = 403
    assert _code(client.post(IMPORT, content=body, headers=TEXT)) == (403, "ErrorAccessDenied")


def test_mailbox_concurrency_limit(graph: GraphServer, client: httpx.Client) -> None:
    graph.state.hold = release = threading.Event()  # admitted requests wait here
    statuses: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        r = client.get(f"/v1.0/users/{UPN}/mailFolders/inbox")
        with lock:
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "ApplicationThrottled"
                assert r.headers["Retry-After"].isdigit()

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    while True:  # four are held inside the server, the other four must be refused
        with lock:
            if len(statuses) >= 4:
                break
        threading.Event().wait(0.01)
    assert statuses == [429] * 4
    release.set()
    for t in threads:
        t.join()
    counts = Counter(statuses)
    assert counts[200] == 4 and counts[429] == 4


def test_request_rate_limit(graph: GraphServer, client: httpx.Client) -> None:
    graph.state.limits.mailbox_requests = 3
    codes = [client.get(f"/v1.0/users/{UPN}/mailFolders/inbox").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_me_needs_a_delegated_token(client: httpx.Client) -> None:
    r = client.get("/v1.0/me/mailFolders")
    assert r.status_code == 400  # /me needs a delegated token


def test_json_batch(client: httpx.Client) -> None:
    url = f"/users/{UPN}/mailFolders/inbox"
    reqs = [
        {"id": "1", "method": "GET", "url": url},
        {
            "id": "2",
            "method": "POST",
            "url": f"{url}/childFolders",
            "headers": {"Content-Type": "application/json"},
            "body": {"displayName": "B"},
        },
        {"id": "3", "method": "GET", "url": "/users/nobody@x/mailFolders/inbox"},
    ]
    r = client.post("/v1.0/$batch", json={"requests": reqs})
    assert r.status_code == 200
    got = {x["id"]: x["status"] for x in r.json()["responses"]}
    assert got == {"1": 200, "2": 201, "3": 404}
    no_type = [{"id": "1", "method": "POST", "url": f"{url}/childFolders", "body": {}}]
    assert client.post("/v1.0/$batch", json={"requests": no_type}).status_code == 400
    many = [{"id": str(n), "method": "GET", "url": url} for n in range(21)]
    assert client.post("/v1.0/$batch", json={"requests": many}).status_code == 400
