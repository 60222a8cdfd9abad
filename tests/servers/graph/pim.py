"""Graph's contact and calendar routes (v1.0), after authentication.

`dispatch(state, req, box, rest)` handles `contactFolders…`, `contacts…`,
`calendar…`, `calendars…` and `events…` under users/{id}/. As in Graph:
`GET contactFolders` lists the folders inside the default Contacts folder
and `POST contactFolders` creates one there; `/contacts` is the default
folder's items; `GET calendars` lists every calendar including the default
(`/calendar`); `…/events` lists single events and series masters. Bodies
are checked by pim_checks; `$filter` on the stamped extended property,
`$select`, `$expand` of extended properties and `$top`/`$skip` paging work
as for messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.servers.graph import messages as msgs
from tests.servers.graph import pim_checks
from tests.servers.graph import pim_instances as inst
from tests.servers.graph.core import GraphError, Request, Response, json_response, not_found
from tests.servers.graph.odata import parse_expand, parse_filter
from tests.servers.graph.routes import page
from tests.servers.graph.state import Attachment, Mailbox, State

ROOTS = ("contactFolders", "contacts", "calendar", "calendars", "events")
CONTACT_ROOTS = ("contactFolders", "contacts")


@dataclass
class PimFolder:
    id: str
    name: str
    parent_id: str  # contact folders: "" = inside the default Contacts folder


@dataclass
class PimItem:
    id: str
    kind: str  # "contact" | "event"
    folder_id: str
    props: dict[str, Any]
    ext: dict[str, str]
    cancelled: set[str] = field(default_factory=set)  # originalStart of deleted occurrences
    exceptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # … of changed ones
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class PimBox:
    contacts_root: str
    default_calendar: str
    contact_folders: dict[str, PimFolder] = field(default_factory=dict)
    calendars: dict[str, PimFolder] = field(default_factory=dict)
    items: dict[str, PimItem] = field(default_factory=dict)

    def in_folder(self, kind: str, folder_id: str) -> list[PimItem]:
        return [i for i in self.items.values() if i.kind == kind and i.folder_id == folder_id]


def pim_of(state: State, box: Mailbox) -> PimBox:
    if box.pim is None:
        cal = state.new_id("AAMkCal")
        pim = PimBox(state.new_id("AAMkCtf"), cal)
        pim.calendars[cal] = PimFolder(cal, "Calendar", "")
        box.pim = pim
    assert isinstance(box.pim, PimBox)
    return box.pim


def dispatch(state: State, req: Request, box: Mailbox, rest: list[str]) -> Response:
    with state.lock:
        return _dispatch(state, req, box, rest)


def _dispatch(state: State, req: Request, box: Mailbox, rest: list[str]) -> Response:
    pim = pim_of(state, box)
    head, tail = rest[0], rest[1:]
    if head == "contacts":  # an item here may be in any contact folder
        return _items(state, req, pim, "contact", "" if tail else pim.contacts_root, tail)
    if head == "contactFolders":
        return _contact_folders(state, req, pim, tail)
    if head == "calendar":
        return _calendar(state, req, pim, pim.calendars[pim.default_calendar], tail)
    if head == "calendars":
        if not tail:
            return _folders(state, req, pim.calendars, "", "name", pim)
        cal = pim.calendars.get(tail[0])
        if cal is None:
            raise not_found()
        return _calendar(state, req, pim, cal, tail[1:])
    if head == "events":
        return _items(state, req, pim, "event", "", tail)
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{head}'.")


def _contact_folders(state: State, req: Request, pim: PimBox, tail: list[str]) -> Response:
    if not tail:
        return _folders(state, req, pim.contact_folders, "", "displayName", pim)
    folder = pim.contact_folders.get(tail[0])
    if folder is None:
        raise not_found()
    if tail[1:] == ["childFolders"]:
        return _folders(state, req, pim.contact_folders, folder.id, "displayName", pim)
    if tail[1:2] == ["contacts"]:
        return _items(state, req, pim, "contact", folder.id, tail[2:])
    if len(tail) == 1 and req.method == "GET":
        return json_response(200, _folder_json(folder, "displayName", pim))
    raise GraphError(400, "BadRequest", "Unsupported contact folder request.")


def _calendar(state: State, req: Request, pim: PimBox, cal: PimFolder, tail: list[str]) -> Response:
    if not tail and req.method == "GET":
        return json_response(200, _folder_json(cal, "name", pim))
    if tail[:1] == ["events"]:
        return _items(state, req, pim, "event", cal.id, tail[1:])
    raise GraphError(400, "BadRequest", "Unsupported calendar request.")


def _folder_json(f: PimFolder, name_key: str, pim: PimBox) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f.id, name_key: f.name}
    if name_key == "displayName":
        out["parentFolderId"] = f.parent_id or pim.contacts_root
    else:
        out["isDefaultCalendar"] = f.id == pim.default_calendar
        out["canEdit"] = True
    return out


def _folders(
    state: State, req: Request, folders: dict[str, PimFolder], parent: str, key: str, pim: PimBox
) -> Response:
    siblings = [f for f in folders.values() if f.parent_id == parent]
    if req.method == "GET":
        return page(req, [_folder_json(f, key, pim) for f in siblings], state.limits.page_size)
    if req.method != "POST":
        raise GraphError(405, "ErrorInvalidRequest", "Method not allowed.")
    body = req.json()
    name = body.get(key) if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) - {key, "@odata.type"}:
        raise pim_checks.invalid(f"Only '{key}' can be given when creating this folder.")
    if not isinstance(name, str) or not name.strip():
        raise GraphError(400, "ErrorInvalidFolderName", f"The folder's {key} is missing.")
    if any(f.name.lower() == name.lower() for f in siblings):
        raise GraphError(
            409, "ErrorFolderExists", "A folder with the specified name already exists."
        )
    made = PimFolder(state.new_id("AAMkCtf" if key == "displayName" else "AAMkCal"), name, parent)
    folders[made.id] = made
    return json_response(201, _folder_json(made, key, pim))


def _items(
    state: State, req: Request, pim: PimBox, kind: str, folder_id: str, tail: list[str]
) -> Response:
    if tail and kind == "event" and "." in tail[0] and not tail[1:]:
        return _occurrence(req, pim, tail[0])
    if tail:
        item = pim.items.get(tail[0])
        if item is None or item.kind != kind or (folder_id and item.folder_id != folder_id):
            raise not_found()
        return _item(state, req, pim, item, tail[1:])
    if not folder_id:  # /events: every calendar
        raise GraphError(400, "BadRequest", "Use a calendar's events to list or create.")
    if req.method == "POST":
        body = req.json()
        (pim_checks.check_contact if kind == "contact" else pim_checks.check_event)(body)
        ext = msgs.ext_props(body)
        props = {k: v for k, v in body.items() if k != "singleValueExtendedProperties"}
        item = PimItem(state.new_id("AAMkItm"), kind, folder_id, props, ext)
        pim.items[item.id] = item
        state.bump(f"{kind}_created")
        return json_response(201, render(item, [], []))
    if req.method != "GET":
        raise GraphError(405, "ErrorInvalidRequest", "Method not allowed.")
    found = pim.in_folder(kind, folder_id)
    if "$filter" in req.query:
        flt = parse_filter(req.query["$filter"])
        if flt.prop_id is None:
            raise GraphError(400, "BadRequest", "Only extended-property filters are supported.")
        found = [i for i in found if i.ext.get(flt.prop_id) == flt.value]
    select = [s.strip() for s in req.query.get("$select", "").split(",") if s.strip()]
    expand = parse_expand(req.query.get("$expand", ""))
    return page(req, [render(i, select, expand) for i in found], state.limits.page_size)


def _item(state: State, req: Request, pim: PimBox, item: PimItem, tail: list[str]) -> Response:
    if tail == ["attachments"] and req.method == "POST" and item.kind == "event":
        att = msgs.file_attachment(state, req.json())
        item.attachments.append(att)
        return json_response(201, {"id": att.id, "name": att.name, "size": len(att.data)})
    if tail == ["instances"] and req.method == "GET" and item.props.get("recurrence"):
        lo, hi = inst.window(req.query)
        found = [occurrence_json(item, o, local) for o, local in inst.expand(item.props, hi)]
        found = [o for o in found if o and inst._parse(o["originalStart"]) >= lo]
        select = [s.strip() for s in req.query.get("$select", "").split(",") if s.strip()]
        rows = [
            {k: v for k, v in o.items() if not select or k in select or k == "id"} for o in found
        ]
        return page(req, rows, 10)
    if tail:
        raise GraphError(400, "BadRequest", "Unsupported item request.")
    if req.method == "PATCH":
        body = req.json()
        check = pim_checks.check_contact if item.kind == "contact" else pim_checks.check_event
        check({**item.props, **body} if item.kind == "event" else body)
        item.ext.update(msgs.ext_props(body))
        item.props.update({k: v for k, v in body.items() if k != "singleValueExtendedProperties"})
        return json_response(200, render(item, [], []))
    if req.method == "GET":
        select = [s for s in req.query.get("$select", "").split(",") if s]
        return json_response(200, render(item, select, parse_expand(req.query.get("$expand", ""))))
    if req.method == "DELETE":
        del pim.items[item.id]
        return Response(204)
    raise GraphError(405, "ErrorInvalidRequest", "Method not allowed.")


def occurrence_json(series: PimItem, original: Any, local: Any) -> dict[str, Any]:
    """One occurrence as /instances shows it; {} when it was deleted."""
    key = inst.iso(original)
    if key in series.cancelled:
        return {}
    start = series.props["start"]
    length = inst._parse(series.props["end"]["dateTime"]) - inst._parse(start["dateTime"])
    fmt = "%Y-%m-%dT%H:%M:%S"
    occ: dict[str, Any] = {
        **{k: v for k, v in series.props.items() if k != "recurrence"},
        "id": f"{series.id}.{original.strftime('%Y%m%dT%H%M%SZ')}",
        "seriesMasterId": series.id,
        "type": "occurrence",
        "originalStart": key,
        "start": {"dateTime": local.strftime(fmt), "timeZone": start["timeZone"]},
        "end": {"dateTime": (local + length).strftime(fmt), "timeZone": start["timeZone"]},
    }
    if key in series.exceptions:
        occ.update(series.exceptions[key], type="exception")
    return occ


def _occurrence(req: Request, pim: PimBox, ident: str) -> Response:
    series_id, _, stamp = ident.rpartition(".")
    series = pim.items.get(series_id)
    if series is None or not series.props.get("recurrence"):
        raise not_found()
    try:
        original = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as e:
        raise not_found() from e
    local = next((lt for o, lt in inst.expand(series.props, original + timedelta(seconds=1))
                  if o == original), None)  # fmt: skip
    occ = occurrence_json(series, original, local) if local is not None else {}
    if not occ:
        raise not_found()
    if req.method == "GET":
        return json_response(200, occ)
    if req.method == "DELETE":
        series.cancelled.add(occ["originalStart"])
        return Response(204)
    if req.method == "PATCH":
        body = req.json()
        pim_checks.check_occurrence(body, {**series.props, **occ})
        series.exceptions[occ["originalStart"]] = {
            **series.exceptions.get(occ["originalStart"], {}), **body}  # fmt: skip
        return json_response(200, occurrence_json(series, original, local))
    raise GraphError(405, "ErrorInvalidRequest", "Method not allowed.")


def render(item: PimItem, select: list[str], expand: list[str]) -> dict[str, Any]:
    key = "parentFolderId" if item.kind == "contact" else "calendarId"
    full = {"id": item.id, key: item.folder_id, **item.props}
    out = {k: v for k, v in full.items() if not select or k in select or k == "id"}
    if expand:
        out["singleValueExtendedProperties"] = [
            {"id": pid, "value": value} for pid, value in item.ext.items() if pid in expand
        ]
    return out
