"""The first request of a Graph mail delivery: create the item (importMime, MIME draft or JSON).

`Creator.create` returns a `Made`: the new item's id and the PATCH that
finishes it (`finish.py` sends those, batched), or `Failed`. Three ways in:
- "importMime": POST {beta}/…/mailFolders/{id}/importMime with the base64
  MIME as the whole body (`Content-Type: text/plain`), answered `201 Created`
  with a non-draft message; state and stable key follow in the PATCH;
- "mimeDraft": a draft stays an editable draft: POST …/mailFolders/{id}/messages
  with the base64 MIME as text/plain (Graph's documented MIME create), then
  the same PATCH;
- "json": when the tenant refuses importMime (403/404/405/501, or 400
  "Resource not found for the segment"), or a message over the 4 MB request
  cap: created from JSON (jsonmail.json_message), state and key included, so
  nothing is left to PATCH; the MIME bytes are not kept.

A POST whose answer was lost (`Ambiguous`) is looked up before it is sent
again: a stamped copy is the message; an unstamped copy with its Message-ID
is a create whose answer was lost, adopted and finished like a fresh one;
a half-made JSON copy (attachments missing) is deleted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pstkit.converters.graph import jsonmail as gj
from pstkit.converters.graph.client import Ambiguous, ApiError, GraphHttp
from pstkit.model import Flag, StoredMessage
from pstkit.protocols import Failed

log = logging.getLogger("pstkit.graph")

MODES = ("importMime", "json")
ATTEMPTS = 3  # sends of one message after ambiguous failures (each preceded by a lookup)
UPLOAD_CHUNK = 10 * 320 * 1024  # a multiple of 320 KiB below 4 MB, as Graph asks
TEXT = {"Content-Type": "text/plain"}


@dataclass(frozen=True)
class Lost:
    """A create whose answer was lost: the item may or may not exist."""

    error: str


@dataclass(frozen=True)
class Made:
    item_id: str
    #: the PATCH that finishes the item; None when nothing is left to do
    patch: dict[str, Any] | None


def _same_instant(a: str, b: str) -> bool:
    """Two Graph UTC times ("2020-01-02T03:04:05Z", maybe with fractions) name one second."""
    return a[:19] == b[:19] and bool(a)


def unavailable(e: ApiError) -> bool:
    """Does this importMime answer mean "this tenant cannot do it" (not "bad message")?"""
    return e.status in (403, 404, 405, 501) or (e.status == 400 and "segment" in e.message)


class Creator:
    def __init__(
        self, api: GraphHttp, base: str, beta_base: str, mode: str,
        edge: Callable[[ApiError], Exception],
    ) -> None:  # fmt: skip
        self.api, self._base, self._beta_base = api, base, beta_base
        self.mode = mode
        self.mode_counts = {m: 0 for m in (*MODES, "mimeDraft")}
        self._edge = edge  # ApiError -> the error the user sees (permission, mailbox)
        self._lock = threading.Lock()
        self._claimed: set[str] = set()

    def create(self, folder_id: str, msg: StoredMessage, raw: bytes) -> Made | Failed | Lost:
        """One try; `Lost` when the answer was lost (see `recover`)."""
        try:
            return self._claim(self._send(folder_id, msg, raw))
        except Ambiguous as e:
            log.info("message %s: outcome unknown (%s); will look it up", msg.id, e)
            return Lost(str(e))
        except ApiError as e:
            return self._refused(e)

    def recover(self, folder_id: str, msg: StoredMessage, raw: bytes, lost: Lost) -> Made | Failed:
        """After a lost answer: look the message up, else send it again (up to ATTEMPTS).
        Called once the batch's other creates are answered, so an unstamped item
        another message of the batch made is known (claimed) and never adopted."""
        error = lost.error
        for attempt in range(1, ATTEMPTS + 1):
            found = self._wrap(lambda: self.settle(folder_id, msg, raw))
            if found is not None:
                if found.patch is not None:  # made from MIME; its answer was lost
                    self._counted("mimeDraft" if Flag.DRAFT in msg.flags else "importMime")
                return found
            if attempt == ATTEMPTS:
                break
            made = self.create(folder_id, msg, raw)
            if not isinstance(made, Lost):
                return made
            error = made.error
        return Failed(f"Graph did not confirm delivery after {ATTEMPTS} tries: {error}")

    def _refused(self, e: ApiError) -> Failed:
        if e.status in (401, 403) and e.code == "ErrorAccessDenied":
            raise self._edge(e) from e
        return Failed(f"Graph refused the message: {e}")

    def _claim(self, made: Made) -> Made:
        """Remember the items this sink made or adopted: never adopted for another message."""
        with self._lock:
            self._claimed.add(made.item_id)
        return made

    def _wrap(self, fn: Callable[[], Made | None]) -> Made | None:
        try:
            return fn()
        except ApiError as e:
            raise self._edge(e) from e

    # --- after an ambiguous send, or a kill -----------------------------------

    def settle(self, folder_id: str, msg: StoredMessage, raw: bytes) -> Made | None:
        """The message if it arrived (with what is left to do); removes half-made copies."""
        key = msg.stable_key
        for item in self._by_key(folder_id, key + gj.INCOMPLETE):
            self.api.call("DELETE", f"{self._base}/messages/{quote(str(item['id']))}")
        found = self._by_key(folder_id, key)
        if found:
            return self._claim(Made(str(found[0]["id"]), None))
        adopted = self.adopt(folder_id, msg, raw)
        return None if adopted is None else self._claim(adopted)

    def by_id(self, item_id: str, msg: StoredMessage) -> Made | None:
        """The item a killed run created as `item_id`, if it is still there."""
        url = f"{self._base}/messages/{quote(item_id)}"
        params = {"$select": "id", "$expand": gj.expand_props(gj.KEY_PROP)}
        try:
            item = self.api.json("GET", url, params=params)
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        key = gj.prop_value(item, gj.KEY_PROP)
        if key is None:
            return self._claim(Made(str(item["id"]), gj.state_patch(msg)))
        return self._claim(Made(str(item["id"]), None)) if key == msg.stable_key else None

    def adopt(self, folder_id: str, msg: StoredMessage, raw: bytes) -> Made | None:
        """An unstamped item in the folder that is this message is ours: a create
        whose answer (or whose PATCH) was lost. It is finished, not sent again.
        "This message": the same Message-ID; without one, the same subject and
        sent time (the `Date` header, which Graph keeps as sentDateTime)."""
        url = f"{self._base}/mailFolders/{folder_id}/messages"
        expand = gj.expand_props(gj.KEY_PROP)
        if msg.message_id:
            flt = f"internetMessageId eq {gj.odata_quote(msg.message_id)}"
            want = None
        else:
            parsed = gj.parse(raw)
            sent = gj.sent_time(parsed)
            if sent is None:
                return None
            flt = f"subject eq {gj.odata_quote(gj.header(parsed, 'Subject'))}"
            want = gj.systime(sent)
        params = {"$filter": flt, "$select": "id,sentDateTime", "$expand": expand}
        found = []
        for item in self.api.pages(url, params):
            with self._lock:
                taken = str(item["id"]) in self._claimed
            if taken or gj.prop_value(item, gj.KEY_PROP) is not None:
                continue
            if want is None or _same_instant(str(item.get("sentDateTime") or ""), want):
                found.append(str(item["id"]))
        chosen = self._same_bytes(found, raw)
        return None if chosen is None else Made(chosen, gj.state_patch(msg))

    def _same_bytes(self, ids: list[str], raw: bytes) -> str | None:
        """Of several candidates (two messages alike in Message-ID, or in subject and
        date), the one whose MIME is these bytes: importMime "preserves the full MIME
        content". If none is byte-equal (Exchange rewrote it), the first."""
        if len(ids) <= 1:
            return ids[0] if ids else None
        for item_id in ids:
            url = f"{self._base}/messages/{quote(item_id)}/$value"
            if self.api.call("GET", url).content == raw:
                return item_id
        return ids[0]

    def _by_key(self, folder_id: str, key: str) -> list[dict[str, Any]]:
        url = f"{self._base}/mailFolders/{folder_id}/messages"
        return list(self.api.pages(url, {"$filter": gj.key_filter(key), "$select": "id"}))

    # --- the three ways in -----------------------------------------------------

    def _send(self, folder_id: str, msg: StoredMessage, raw: bytes) -> Made:
        fits = gj.import_size(raw) <= gj.MAX_REQUEST
        if Flag.DRAFT in msg.flags and fits:
            return self._mime_post(f"{self._base}/mailFolders/{folder_id}/messages", msg, raw,
                                   "mimeDraft")  # fmt: skip
        if self.mode == "importMime" and fits:
            try:
                url = f"{self._beta_base}/mailFolders/{folder_id}/importMime"
                return self._mime_post(url, msg, raw, "importMime")
            except ApiError as e:
                if not unavailable(e):
                    raise
                self._switch_to_json(e)
        elif self.mode == "importMime":
            log.warning(
                "message %s is %d bytes: over importMime's 4 MB request cap, delivered "
                "as JSON (MIME bytes not kept)",
                msg.id,
                len(raw),
            )
        return self._create_json(folder_id, msg, raw)

    def _mime_post(self, url: str, msg: StoredMessage, raw: bytes, mode: str) -> Made:
        """POST the base64 MIME as the whole text/plain body; Graph answers 201 Created."""
        resp = self.api.call("POST", url, content=gj.import_mime_body(raw), headers=TEXT)
        try:
            item_id = str(resp.json()["id"]) if resp.status_code == 201 else ""
        except (ValueError, KeyError, TypeError):
            item_id = ""
        if not item_id:  # a 2xx that is not the documented answer: did it create one?
            raise Ambiguous(f"{mode} answered HTTP {resp.status_code}, not 201 with a message")
        self._counted(mode)
        return Made(item_id, gj.state_patch(msg))

    def _switch_to_json(self, e: ApiError) -> None:
        with self._lock:
            if self.mode != "json":
                self.mode = "json"
                log.warning(
                    "importMime is not available (%s; it needs Mail-Advanced.ReadWrite): "
                    "creating messages as JSON, which cannot keep the MIME bytes",
                    e,
                )

    def _counted(self, mode: str) -> None:
        with self._lock:
            self.mode_counts[mode] += 1

    def _create_json(self, folder_id: str, msg: StoredMessage, raw: bytes) -> Made:
        made = gj.json_message(msg, raw, msg.stable_key)
        url = f"{self._base}/mailFolders/{folder_id}/messages"
        item_id = str(self.api.json("POST", url, json=made.body)["id"])
        if made.late:
            try:
                for att in made.late:
                    self._attach(item_id, att)
                stamp = [{"id": gj.KEY_PROP, "value": msg.stable_key}]
                self.api.call("PATCH", f"{self._base}/messages/{quote(item_id)}",
                              json={"singleValueExtendedProperties": stamp})  # fmt: skip
            except (ApiError, Ambiguous):
                self.api.call("DELETE", f"{self._base}/messages/{quote(item_id)}")
                raise
        self._counted("json")
        return Made(item_id, None)

    def _attach(self, item_id: str, att: gj.AttachmentPart) -> None:
        url = f"{self._base}/messages/{quote(item_id)}/attachments"
        if len(att.data) <= gj.SMALL_ATTACHMENT:
            self.api.call("POST", url, json=att.graph())
            return
        item = {"attachmentType": "file", "name": att.name, "size": len(att.data),
                "contentType": att.content_type, "isInline": att.is_inline}  # fmt: skip
        session = self.api.json("POST", f"{url}/createUploadSession", json={"AttachmentItem": item})
        total = len(att.data)
        for start in range(0, total, UPLOAD_CHUNK):
            chunk = att.data[start : start + UPLOAD_CHUNK]
            rng = f"bytes {start}-{start + len(chunk) - 1}/{total}"
            self.api.put_raw(str(session["uploadUrl"]), chunk, {"Content-Range": rng})
