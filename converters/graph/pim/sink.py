"""Contacts and events into Graph: the I/O half of graph_pim_* for GraphSink.

Graph cannot take a vCard or an iCalendar file; the item is created from
JSON (graph_pim_contact / graph_pim_event) and stamped at creation with the
same `PstkitSourceKey` extended property as messages, so duplicates are
found after a lost ledger and an ambiguous send is settled by looking the
key up before sending again. What the JSON could not carry comes back as
the Delivered note, which the pipeline records ("delivered, but …").

Distribution lists fail with a reason: Graph v1.0 has no API that creates
a contact group. Verify compares count, stable key and subject (the
contact's displayName, the event's subject); the item is not MIME any more,
so there are no bytes or size to compare.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pstkit.converters.graph import jsonmail as gj
from pstkit.converters.graph.client import Ambiguous, ApiError, GraphHttp
from pstkit.converters.graph.index import FolderIndex
from pstkit.converters.graph.pim.contact import PimItem, contact, is_group
from pstkit.converters.graph.pim.event import event
from pstkit.converters.graph.pim.folders import CONTACTS, DENIED, PERMISSION, PimFolder
from pstkit.converters.pim.content import ICAL_TYPES, VCARD_TYPES, find_part
from pstkit.itemfields import emails_text
from pstkit.model import Delivered, ItemKind, StoredMessage
from pstkit.protocols import Failed, TargetItem

log = logging.getLogger("pstkit.graph")

ATTEMPTS = 3
EdgeError = Callable[[ApiError, str], Exception]  # (error, permission) -> pstkit error


class PimSink:
    def __init__(self, api: GraphHttp, base: str, edge: EdgeError, invite: bool = False) -> None:
        self._api = api
        self._base = base
        self._edge = edge
        self._invite = invite

    # --- translation ---------------------------------------------------------

    def translate(self, folder: PimFolder, msg: StoredMessage, raw: bytes) -> PimItem | Failed:
        if folder.id.startswith(DENIED):
            why, need = folder.id.removeprefix(DENIED), PERMISSION[folder.ns]
            return Failed(f"Graph refused access to {folder.ns} ({why}): the app needs {need}")
        want = ItemKind.CONTACT if folder.ns == CONTACTS else ItemKind.EVENT
        if msg.kind is ItemKind.DISTLIST:
            return Failed("Graph v1.0 has no API to create a contact group (distribution "
                          "list): not imported; it stays in the store")  # fmt: skip
        if msg.kind is not want:
            return Failed(f"a {msg.kind.value} item cannot go into a Graph {folder.ns} folder")
        types = VCARD_TYPES if want is ItemKind.CONTACT else ICAL_TYPES
        text = find_part(raw, types)
        if text is None:
            return Failed(f"the stored {msg.kind.value} has no {types[0]} part to import")
        try:
            if want is ItemKind.CONTACT:
                if is_group(text):
                    return Failed("a vCard group (distribution list): Graph v1.0 cannot create it")
                return _with_attachments(contact(text), raw, carry=False)
            return _with_attachments(event(text, self._invite), raw, carry=True)
        except ValueError as e:
            return Failed(f"cannot read the stored {msg.kind.value}: {e}")

    # --- delivery ------------------------------------------------------------

    def put(self, folder: PimFolder, msg: StoredMessage, raw: bytes) -> Delivered | Failed:
        item = self.translate(folder, msg, raw)
        if isinstance(item, Failed):
            return item
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._create(folder, msg.stable_key, item)
            except Ambiguous as e:
                log.info("item %s: outcome unknown (%s); looking it up", msg.id, e)
                found = self._wrap(folder, lambda: self._settle(folder, msg.stable_key))
                if found:
                    return Delivered(found[0], "; ".join(item.notes))
                if attempt == ATTEMPTS:
                    return Failed(f"Graph did not confirm delivery after {ATTEMPTS} tries: {e}")
            except ApiError as e:
                if e.status == 403:
                    raise self._edge(e, PERMISSION[folder.ns]) from e
                return Failed(f"Graph refused the {msg.kind.value}: {e}")
        raise AssertionError("unreachable")

    def _create(self, folder: PimFolder, key: str, item: PimItem) -> Delivered:
        """POST the item; an event with attachments or changed/deleted occurrences is
        stamped "incomplete" until they are added, so a crash leaves nothing that looks done."""
        pending = bool(item.later or item.files)
        stamp = key + gj.INCOMPLETE if pending else key
        body = {**item.body, "singleValueExtendedProperties": [{"id": gj.KEY_PROP, "value": stamp}]}
        item_id = str(self._api.json("POST", folder.items_url(self._base), json=body)["id"])
        notes = list(item.notes)
        if pending:
            url = folder.item_url(self._base, item_id)
            try:
                for part in item.files:
                    self._api.call("POST", f"{url}/attachments", json=part.graph())
                if item.later:
                    notes += apply_changes(self._api, self._base, item_id, item.later)
                final = {"singleValueExtendedProperties": [{"id": gj.KEY_PROP, "value": key}]}
                self._api.call("PATCH", url, json=final)
            except (ApiError, Ambiguous):
                self._api.call("DELETE", url)  # no half-made series left behind
                raise
        return Delivered(item_id, "; ".join(notes))

    def _settle(self, folder: PimFolder, key: str) -> list[str]:
        """After an ambiguous send: remove half-made copies, then look for the whole one."""
        for tid in self.by_key(folder, key + gj.INCOMPLETE):
            self._api.call("DELETE", folder.item_url(self._base, tid))
        return self.by_key(folder, key)

    def _wrap(self, folder: PimFolder, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ApiError as e:
            raise self._edge(e, PERMISSION[folder.ns]) from e

    # --- lookups -------------------------------------------------------------

    def _listing(self, folder: PimFolder, select: str) -> list[dict[str, Any]]:
        if folder.id.startswith(DENIED):
            return []
        params = {"$select": select, "$top": "1000", "$expand": gj.expand_props(gj.KEY_PROP)}
        return list(self._api.pages(folder.items_url(self._base), params))

    def by_key(self, folder: PimFolder, key: str) -> list[str]:
        params = {"$filter": gj.key_filter(key), "$select": "id"}
        return [str(i["id"]) for i in self._api.pages(folder.items_url(self._base), params)]

    def index(self, folder: PimFolder) -> FolderIndex:
        items: list[dict[str, Any]] = self._wrap(folder, lambda: self._listing(folder, "id"))
        return FolderIndex.of(items)

    def inventory(self, folder: PimFolder) -> Iterator[TargetItem]:
        name = "displayName,emailAddresses" if folder.ns == CONTACTS else "subject,start,end"
        items = self._wrap(folder, lambda: self._listing(folder, f"id,{name}"))
        for item in items:
            yield TargetItem(
                target_id=str(item["id"]),
                subject=str(item.get(name.split(",", maxsplit=1)[0]) or ""),
                stable_key=gj.prop_value(item, gj.KEY_PROP) or "",
                fields=compared_fields(item, folder.ns == CONTACTS),
            )

    def delete(self, folder: PimFolder, target_ids: Sequence[str]) -> None:
        for tid in dict.fromkeys(target_ids):
            try:
                self._api.call("DELETE", folder.item_url(self._base, tid))
            except ApiError as e:
                if e.status != 404:  # already gone is what we wanted
                    raise self._edge(e, PERMISSION[folder.ns]) from e


def compared_fields(item: dict[str, Any], contact: bool) -> tuple[tuple[str, str], ...]:
    """What verify compares (pstkit.itemfields): a contact's display name and e-mail
    addresses; an event's start and end when Graph gives them in UTC (it does unless asked
    for a zone)."""
    if contact:
        addresses = [str(a.get("address") or "") for a in item.get("emailAddresses") or []
                     if isinstance(a, dict)]
        return (("name", str(item.get("displayName") or "")),
                ("emails", emails_text(addresses)))
    out = []
    for key in ("start", "end"):
        when = item.get(key)
        if isinstance(when, dict) and when.get("timeZone") == "UTC" and when.get("dateTime"):
            stamp = str(when["dateTime"])  # naive: the UTC the timeZone field names
            out.append((key, _utc_text(stamp if stamp.endswith("Z") else stamp + "Z")))
    return tuple(out)


def _utc_text(value: str) -> str:
    """Graph's originalStart ("…T15:00:00.0000000Z", "…+00:00") as "…T15:00:00Z"."""
    head = re.sub(r"\.\d+", "", value).replace("Z", "+00:00")
    return datetime.fromisoformat(head).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def apply_changes(
    api: GraphHttp, base: str, series_id: str, changes: Sequence[dict[str, Any]]
) -> list[str]:
    """Delete or change occurrences of a new series via its instances (Graph's way).
    Returns notes for occurrences the series does not have."""
    times = sorted(
        datetime.fromisoformat(str(c["original"]).replace("Z", "+00:00")) for c in changes
    )
    params = {
        "startDateTime": (times[0] - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (times[-1] + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "$select": "id,originalStart",
        "$top": "100",
    }
    url = f"{base}/events/{series_id}/instances"
    found = {_utc_text(str(i["originalStart"])): str(i["id"]) for i in api.pages(url, params)}
    notes = []
    for change in changes:
        instance = found.get(str(change["original"]))
        if instance is None:
            notes.append(f"occurrence {change['what']} is not in the Graph series: not changed")
        elif change["patch"] is None:
            try:
                api.call("DELETE", f"{base}/events/{instance}")
            except ApiError as e:
                if e.status != 404:  # gone already (a retried DELETE) is what we wanted
                    raise
        else:
            api.call("PATCH", f"{base}/events/{instance}", json=change["patch"])
    return notes


def _with_attachments(item: PimItem, raw: bytes, carry: bool) -> PimItem:
    """An event's attachments go along as file attachments (an attached message as
    its .eml); Graph's contact has none, and the big ones would need an upload
    session: those are listed in the notes."""
    skip = (*VCARD_TYPES, *ICAL_TYPES)  # the item's own data part
    parts = [a for a in gj.attachments(gj.parse(raw)) if a.content_type not in skip]
    files = [a for a in parts if carry and len(a.data) <= gj.SMALL_ATTACHMENT]
    left = [a.name for a in parts if a not in files]
    notes = (*item.notes, f"attachment(s) not carried: {', '.join(left)}") if left else item.notes
    return PimItem(item.body, notes, item.later, tuple(files))
