"""The EWS sink's error classes and how exchangelib's failures are read (exchangelib edge).

`Throttled` (retry, maybe after the server's BackOffMilliseconds, looking up
what an unanswered request may have created), `RequestTooLarge` (HTTP 413:
send smaller requests) and `Refused` (a SOAP fault for a whole request: one
item in it was refused; the sink narrows it down).
"""

from __future__ import annotations

import re

import requests.exceptions
from exchangelib import errors as xerr

from pstkit.errors import ConnectError, ConnectorError, TransientError

RETRY_STATUS = (429, 502, 503, 504)  # exchangelib passes 429/502/504 on as MalformedResponseError
TRANSIENT = (
    xerr.ErrorServerBusy,
    xerr.ErrorTimeoutExpired,
    xerr.ErrorInternalServerTransientError,
    xerr.ErrorTooManyObjectsOpened,
    requests.exceptions.ConnectionError,
)


class Throttled(TransientError):
    """temporary failure at {}: {}"""

    def __init__(self, where: str, reason: str, back_off: float | None = None) -> None:
        super().__init__(where, reason)
        self.back_off = back_off  # seconds the server asked for, if it did


class RequestTooLarge(ConnectorError):
    """{} refused a request of this size (HTTP 413)"""


class Refused(ConnectorError):
    """{} refused the request: {}"""

    def __init__(self, where: str, words: str) -> None:
        super().__init__(where, words)
        self.words = words  # the server's own words (faultstring / MessageText)


#: request-level refusals that are about the session, the mailbox or the server's
#: state, never about one item in the request (translated() handles them)
NOT_ABOUT_ITEMS = (
    *TRANSIENT,
    xerr.ErrorNonExistentMailbox,
    xerr.ErrorMailboxMoveInProgress,
    xerr.ErrorAccessDenied,
    xerr.ErrorImpersonateUserDenied,
    xerr.ErrorInvalidExchangeImpersonationHeaderData,
    xerr.ErrorInvalidLicense,
    xerr.ErrorFolderNotFound,
    xerr.ErrorQuotaExceeded,
)


def is_fault(e: Exception) -> bool:
    """A SOAP fault the server sent, as opposed to an answer exchangelib could not read
    ("Bad SOAP response", "Unknown SOAP response…"), which it raises as SOAPError too."""
    return isinstance(e, xerr.ResponseMessageError) or str(e).startswith("SOAP error code:")


def fault_words(e: Exception) -> str:
    """What the server said in a SOAP fault, without exchangelib's framing."""
    text = str(e)
    said = re.search(r"string: (.*?) actor: ", text, re.S)
    words = said.group(1) if said else text
    return " ".join(words.split()) or type(e).__name__


def http_error(where: str, e: Exception) -> ConnectorError:
    status = re.search(r"Code: (\d{3}) ", str(e))
    code = int(status.group(1)) if status else 0
    if code == 413:
        return RequestTooLarge(where)
    if code in RETRY_STATUS:
        return Throttled(where, f"HTTP {code}")
    if code == 404:
        return ConnectError(where, "no EWS endpoint at this URL (HTTP 404)")
    return ConnectError(where, f"not an EWS answer (HTTP {code or '?'})")
