"""Graph's mail routes under /v1.0 and /beta, after authentication.

`dispatch(state, req, box, version, rest)` handles one request for one
mailbox; `rest` is the path after users/{id}/ (or me/).
"""

from __future__ import annotations

import base64
import math
from typing import Any
from urllib.parse import urlencode

from tests.servers.graph import messages as msgs
from tests.servers.graph.core import (
    GraphError,
    Request,
    Response,
    bad_request,
    json_response,
    not_found,
)
from tests.servers.graph.odata import Filter, parse_expand, parse_filter
from tests.servers.graph.state import Attachment, Folder, Mailbox, Message, State

UPLOAD_CHUNK_MAX = 4 * 1024 * 1024


def folder_json(state: State, box: Mailbox, f: Folder) -> dict[str, Any]:
    return {
        "id": f.id,
        "displayName": f.display_name,
        "parentFolderId": f.parent_id,
        "childFolderCount": len(state.children(box, f.id)),
        "unreadItemCount": 0,
        "totalItemCount": state.count_in(box, f.id),
        "isHidden": False,
    }


def page(req: Request, items: list[dict[str, Any]], default: int) -> Response:
    top = int(req.query.get("$top", default))
    skip = int(req.query.get("$skip", 0))
    if not 1 <= top <= 1000:
        raise bad_request("The $top value must be between 1 and 1000.", "BadRequest")
    body: dict[str, Any] = {"value": items[skip : skip + top]}
    if skip + top < len(items):
        query = dict(req.query, **{"$skip": str(skip + top), "$top": str(top)})
        body["@odata.nextLink"] = f"{req.base}{req.path}?{urlencode(query)}"
    return json_response(200, body)


def _folder(state: State, box: Mailbox, ident: str) -> Folder:
    f = state.folder(box, ident)
    if f is None:
        raise not_found()
    return f


def _message(box: Mailbox, ident: str) -> Message:
    m = box.messages.get(ident)
    if m is None:
        raise not_found()
    return m


def dispatch(state: State, req: Request, box: Mailbox, version: str, rest: list[str]) -> Response:
    with state.lock:
        if rest[:1] == ["mailFolders"]:
            return _folders(state, req, box, version, rest[1:])
        if rest[:1] == ["messages"] and len(rest) >= 2:
            return _message_routes(state, req, box, _message(box, rest[1]), rest[2:])
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")


def _folders(state: State, req: Request, box: Mailbox, version: str, rest: list[str]) -> Response:
    root = _folder(state, box, "msgfolderroot")
    if not rest:
        return _children(state, req, box, root)
    f = _folder(state, box, rest[0])
    tail = rest[1:]
    if not tail and req.method == "GET":
        return json_response(200, folder_json(state, box, f))
    if tail == ["childFolders"]:
        return _children(state, req, box, f)
    if tail == ["importMime"] and req.method == "POST":
        return _import_mime(state, req, box, version, f)
    if tail[:1] == ["messages"]:
        if len(tail) == 1:
            return _list_or_create(state, req, box, f)
        m = _message(box, tail[1])
        if m.folder_id != f.id:
            raise not_found()
        return _message_routes(state, req, box, m, tail[2:])
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{tail[0]}'.")


def _children(state: State, req: Request, box: Mailbox, parent: Folder) -> Response:
    if req.method == "GET":
        kids = [folder_json(state, box, f) for f in state.children(box, parent.id)]
        return page(req, kids, state.limits.page_size)
    if req.method != "POST":
        raise GraphError(405, "ErrorInvalidRequest", "Method not allowed.")
    body = req.json()
    name = body.get("displayName") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise bad_request(
            "The folder's displayName is missing.",
            "ErrorInvalidFolderName" if isinstance(name, str) else "RequestBodyRead",
        )
    if any(f.display_name.lower() == name.lower() for f in state.children(box, parent.id)):
        raise GraphError(
            409, "ErrorFolderExists", "A folder with the specified name already exists."
        )
    f = Folder(state.new_id("AQMk"), name, parent.id)
    box.folders[f.id] = f
    return json_response(201, folder_json(state, box, f))


def _import_mime(state: State, req: Request, box: Mailbox, version: str, f: Folder) -> Response:
    """POST …/mailFolders/{id}/importMime (beta): body = base64 MIME, Content-Type text/plain."""
    if version != "beta":  # a beta action: v1.0 has no such segment
        raise GraphError(400, "BadRequest", "Resource not found for the segment 'importMime'.")
    if state.import_mime == 404:  # a tenant where the action is not (yet) available
        raise GraphError(
            404, "ResourceNotFound", "Resource not found for the segment 'importMime'."
        )
    if state.import_mime == 403:
        raise GraphError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "text/plain":
        raise GraphError(
            415, "UnsupportedMediaType",
            f"Content-Type {ctype or 'none'!r} is not supported; importMime takes the "
            "base64 MIME as text/plain.",
        )  # fmt: skip
    m = msgs.create_import(state, f.id, req.body)
    box.messages[m.id] = m
    state.bump("imported")
    return json_response(201, msgs.render(m, [], []))


def _list_or_create(state: State, req: Request, box: Mailbox, f: Folder) -> Response:
    if req.method == "POST" and req.headers.get("content-type", "").startswith("text/plain"):
        m = msgs.create_mime_draft(state, f.id, req.body)
        box.messages[m.id] = m
        state.bump("created")
        return json_response(201, msgs.render(m, [], []))
    if req.method == "POST":
        m = msgs.create_json(state, f.id, req.json())
        box.messages[m.id] = m
        state.bump("created")
        return json_response(201, msgs.render(m, [], []))
    if req.method != "GET":
        raise GraphError(405, "ErrorInvalidRequest", "Method not allowed.")
    found = state.in_folder(box, f.id)
    if "$filter" in req.query:
        flt = parse_filter(req.query["$filter"])
        found = [m for m in found if _matches(m, flt)]
    select = [s.strip() for s in req.query.get("$select", "").split(",") if s.strip()]
    expand = parse_expand(req.query.get("$expand", ""))
    return page(req, [msgs.render(m, select, expand) for m in found], state.limits.page_size)


def _matches(m: Message, flt: Filter) -> bool:
    if flt.prop_id is not None:
        return m.ext.get(flt.prop_id) == flt.value
    return str(m.props.get(flt.field or "", "")) == flt.value


def _message_routes(
    state: State, req: Request, box: Mailbox, m: Message, tail: list[str]
) -> Response:
    if not tail:
        if req.method == "GET":
            select = [s for s in req.query.get("$select", "").split(",") if s]
            return json_response(
                200, msgs.render(m, select, parse_expand(req.query.get("$expand", "")))
            )
        if req.method == "DELETE":
            del box.messages[m.id]
            return Response(204)
        if req.method == "PATCH":
            return _patch(req, m)
    if tail == ["$value"] and req.method == "GET":
        return Response(200, msgs.synth_mime(m), {"Content-Type": "text/plain"})
    if tail == ["attachments"] and req.method == "POST":
        att = msgs.file_attachment(state, req.json())
        m.attachments.append(att)
        return json_response(201, {"id": att.id, "name": att.name, "size": len(att.data)})
    if tail == ["attachments", "createUploadSession"] and req.method == "POST":
        return _upload_session(state, req, box, m)
    raise GraphError(400, "BadRequest", "Unsupported message request.")


def _patch(req: Request, m: Message) -> Response:
    body = req.json()
    if not isinstance(body, dict) or set(body) - {
        "isRead",
        "categories",
        "flag",
        "singleValueExtendedProperties",
    }:
        raise bad_request(
            "Only isRead, categories, flag and extended properties can be updated here.",
            "RequestBodyRead",
        )
    msgs._check_common(body, m.props)
    ext = msgs.ext_props(body)
    ext.pop(msgs.FLAGS, None)  # PR_MESSAGE_FLAGS is only writable before the first save
    m.ext.update(ext)
    return json_response(200, msgs.render(m, [], []))


def _upload_session(state: State, req: Request, box: Mailbox, m: Message) -> Response:
    body = req.json()
    item = body.get("AttachmentItem") if isinstance(body, dict) else None
    if not isinstance(item, dict) or item.get("attachmentType", "file") != "file":
        raise bad_request(
            "AttachmentItem with attachmentType 'file' is required.", "RequestBodyRead"
        )
    size, name = item.get("size"), item.get("name")
    if not isinstance(size, int) or size <= 0 or not isinstance(name, str):
        raise bad_request("AttachmentItem needs 'name' and a positive 'size'.", "RequestBodyRead")
    token = base64.urlsafe_b64encode(state.new_id("up").encode()).decode().rstrip("=")
    state.uploads[token] = {
        "user": box.user_id,
        "message": m.id,
        "name": name,
        "size": size,
        "contentType": item.get("contentType") or "application/octet-stream",
        "isInline": bool(item.get("isInline")),
        "data": bytearray(),
    }
    return json_response(
        201,
        {
            "uploadUrl": f"{req.base}/upload/{token}",
            "expirationDateTime": "2099-01-01T00:00:00Z",
            "nextExpectedRanges": ["0-"],
        },
    )


def upload_chunk(state: State, req: Request, token: str) -> Response:
    """PUT to an uploadUrl: pre-authenticated, so no Authorization header is wanted."""
    if "authorization" in req.headers:
        raise bad_request("Do not send an Authorization header to the upload URL.", "BadRequest")
    with state.lock:
        up = state.uploads.get(token)
        if up is None:
            raise not_found("The upload session was not found.")
        start, end, total = _content_range(req.headers.get("content-range", ""))
        if start != len(up["data"]) or total != up["size"] or end - start + 1 != len(req.body):
            raise GraphError(416, "InvalidRange", f"Expected range {len(up['data'])}-.")
        if len(req.body) > UPLOAD_CHUNK_MAX:
            raise GraphError(413, "RequestEntityTooLarge", "Chunks must be under 4 MB.")
        up["data"].extend(req.body)
        if len(up["data"]) < up["size"]:
            nxt = f"{len(up['data'])}-"
            return json_response(
                200, {"expirationDateTime": "2099-01-01T00:00:00Z", "nextExpectedRanges": [nxt]}
            )
        del state.uploads[token]
        box = state.mailboxes[up["user"]]
        att = Attachment(
            state.new_id("AAMkAtt"),
            up["name"],
            up["contentType"],
            bytes(up["data"]),
            up["isInline"],
        )
        _message(box, up["message"]).attachments.append(att)
    return Response(201, b"", {"Location": f"{req.base}/attachments/{att.id}"})


def _content_range(value: str) -> tuple[int, int, int]:
    try:
        unit, _, spec = value.partition(" ")
        rng, _, total = spec.partition("/")
        start, _, end = rng.partition("-")
        if unit != "bytes":
            raise ValueError(value)
        return int(start), int(end), int(total)
    except ValueError as e:
        raise bad_request(f"Bad Content-Range {value!r}.", "BadRequest") from e


def retry_seconds(delay: float) -> str:
    return str(max(1, math.ceil(delay)))
