"""Faults the test server can be told to inject, as Exchange produces them.

A test arms faults; each armed fault fires on the next matching request
(optionally only for one operation, e.g. "CreateItem") and is used up.
Per-item faults (ErrorMessageSizeExceeded, ErrorMimeContentConversionFailed…)
are chosen by a marker in the item's MIME bytes and never used up.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field


class Kind(enum.Enum):
    BUSY = "busy"  # SOAP fault ErrorServerBusy, BackOffMilliseconds if backoff_ms is set
    HTTP_503 = "503"
    HTTP_429 = "429"
    HTTP_401 = "401"
    DROP_BEFORE = "drop-before"  # connection closed before the request is processed
    DROP_AFTER = "drop-after"  # processed (items saved!), then closed without a response
    #: closed while the request body is still arriving, never processed: over TLS the
    #: client's write fails with SSLEOFError, as gromox 3.10 does under load
    CUT_REQUEST = "cut-request"
    #: processed (items saved!), answered with an empty echo of the request element
    #: (<CreateItem/>) instead of its response, as gromox 3.10 did over TLS after a fault
    EMPTY_ANSWER = "empty-answer"


@dataclass(frozen=True)
class Fault:
    kind: Kind
    op: str | None = None  # only for this operation; None = any
    backoff_ms: int | None = None


@dataclass
class FaultPlan:
    """Shared by all request threads; every method is thread-safe."""

    #: HTTP body larger than this gets HTTP 413 (IIS/WCF request limit); None = no limit
    max_request_bytes: int | None = None
    #: items whose MIME is larger get ErrorMessageSizeExceeded; None = no limit
    max_item_bytes: int | None = None
    #: MIME marker -> ResponseCode returned for that item by CreateItem
    item_errors: dict[bytes, str] = field(default_factory=dict)
    #: one-shot per-item errors: (MIME marker, ResponseCode), each used once
    item_errors_once: list[tuple[bytes, str]] = field(default_factory=list)
    #: marker (in an item's MIME or its XML) -> faultstring of a SOAP fault for the whole
    #: CreateItem, the way gromox 3.10 refuses one item it cannot take (E-3045)
    request_faults: dict[bytes, str] = field(default_factory=dict)
    _armed: list[Fault] = field(default_factory=list)
    _fired: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(
        self, kind: Kind, op: str | None = None, times: int = 1, backoff_ms: int | None = None
    ) -> None:
        with self._lock:
            self._armed.extend([Fault(kind, op, backoff_ms)] * times)

    def take(self, op: str) -> Fault | None:
        """The next armed fault for `op`, removed from the plan."""
        with self._lock:
            for i, f in enumerate(self._armed):
                if f.op in (None, op) and f.kind is not Kind.CUT_REQUEST:
                    self._fired.append(f)
                    return self._armed.pop(i)
        return None

    def cut_now(self) -> bool:
        """Whether to cut the request now arriving (an armed CUT_REQUEST, used up).
        Decided before the body is read, so its operation is not known: any request."""
        with self._lock:
            for i, f in enumerate(self._armed):
                if f.kind is Kind.CUT_REQUEST:
                    self._fired.append(self._armed.pop(i))
                    return True
        return False

    @property
    def fired(self) -> list[Fault]:
        with self._lock:
            return list(self._fired)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._armed)

    def item_error(self, mime: bytes) -> str | None:
        if self.max_item_bytes is not None and len(mime) > self.max_item_bytes:
            return "ErrorMessageSizeExceeded"
        with self._lock:
            for i, (marker, code) in enumerate(self.item_errors_once):
                if marker in mime:
                    del self.item_errors_once[i]
                    return code
        return next((code for marker, code in self.item_errors.items() if marker in mime), None)

    def request_fault(self, item: bytes) -> str | None:
        return next((text for marker, text in self.request_faults.items() if marker in item), None)
