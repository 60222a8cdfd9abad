"""The SOAP autodiscover service (autodiscover.svc) of the EWS test server.

Answers `GetUserSettings` as Exchange does: SOAP 1.1 with WS-Addressing,
`GetUserSettingsResponseMessage/Response/UserResponses/UserResponse` with an
`ErrorCode` per user (NoError, InvalidUser, RedirectAddress, RedirectUrl) and
the requested `UserSettings` (ExternalEwsUrl, InternalEwsUrl,
AutoDiscoverSMTPAddress). Authentication is the EWS endpoint's (server.py
checks it before calling `handle`).

../shared/ews-schema has no autodiscover schema (only the EWS messages and
types), so the request's shape is checked by hand: the elements Exchange
requires, in order ([MS-OXWSADISC] GetUserSettingsRequestMessage). Every
violation is recorded in `problems` (tests assert it stays empty) and answered
with `InvalidRequest`, or a WCF fault when the WS-Addressing action is wrong.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Container

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
AD = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PATH = "/autodiscover/autodiscover.svc"
ACTION = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"
#: RequestedServerVersion values Exchange's autodiscover accepts (ExchangeVersion).
VERSIONS = (
    "Exchange2010", "Exchange2010_SP1", "Exchange2010_SP2", "Exchange2013", "Exchange2013_SP1",
    "Exchange2015", "Exchange2016", "Exchange2019",
)  # fmt: skip
SETTINGS = ("ExternalEwsUrl", "InternalEwsUrl", "AutoDiscoverSMTPAddress")
PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def ad(tag: str) -> str:
    return f"{{{AD}}}{tag}"


class AutodiscoverService:
    """What one server's autodiscover.svc answers; tests change the attributes.

    `ews_url(host)` gives the EWS URL the server itself serves, as seen through
    the Host header of the request (Exchange publishes configured names too).
    """

    def __init__(self, mailboxes: Container[str], ews_url: Callable[[str], str]) -> None:
        self.enabled = True  # False: no autodiscover endpoint (HTTP 404)
        self.external_url: str | None = None  # None: the server's own; "": not available
        self.internal_url: str | None = None  # None: SettingIsNotAvailable
        self.redirect_url: str | None = None  # answer RedirectUrl for every mailbox
        self.aliases: dict[str, str] = {}  # mailbox -> RedirectAddress target
        self.asked: list[str] = []  # every mailbox asked for, in order
        self.problems: list[str] = []  # requests Exchange would refuse
        self._mailboxes = mailboxes
        self._ews_url = ews_url
        self._lock = threading.Lock()

    def handle(self, body: bytes, host: str) -> tuple[int, bytes]:
        """HTTP status and body for one authenticated POST."""
        try:
            env = etree.fromstring(body, PARSER)
        except etree.XMLSyntaxError as e:
            return self._refuse(f"not XML: {e}")
        action = env.findtext(f"{{{SOAP}}}Header/{{{WSA}}}Action")
        if env.tag != f"{{{SOAP}}}Envelope" or action != ACTION:
            self._note(f"envelope {env.tag}, action {action!r}")
            return 500, _action_fault(action or "")
        problems, users, settings = read_request(env)
        if problems:
            for p in problems:
                self._note(p)
            return 200, render(_response("InvalidRequest", problems[0], []))
        answers = [self._user(u, settings, host) for u in users]
        return 200, render(_response("NoError", "", answers))

    def _user(self, mailbox: str, settings: list[str], host: str) -> etree._Element:
        with self._lock:
            self.asked.append(mailbox)
        smtp = mailbox.lower()
        if smtp in self.aliases:
            return _user_response("RedirectAddress", "Redirection address.", self.aliases[smtp])
        if self.redirect_url is not None:
            return _user_response("RedirectUrl", "Redirection URL.", self.redirect_url)
        if smtp not in self._mailboxes:
            return _user_response("InvalidUser", f"Invalid user: '{mailbox}'")
        values = {
            "ExternalEwsUrl": (
                self._ews_url(host) if self.external_url is None else self.external_url or None
            ),
            "InternalEwsUrl": self.internal_url,
            "AutoDiscoverSMTPAddress": smtp,
        }
        out = _user_response("NoError", "No error.")
        errors, found = out.find(ad("UserSettingErrors")), out.find(ad("UserSettings"))
        assert errors is not None and found is not None
        for name in settings:
            value = values.get(name)
            if value is None:
                code = "SettingIsNotAvailable" if name in values else "InvalidSetting"
                err = _sub(errors, "UserSettingError")
                _sub(err, "ErrorCode", code)
                _sub(err, "ErrorMessage", f"The requested setting '{name}' is not available.")
                _sub(err, "SettingName", name)
            else:
                setting = _sub(found, "UserSetting", **{f"{{{XSI}}}type": "StringSetting"})
                _sub(setting, "Name", name)
                _sub(setting, "Value", value)
        return out

    def _note(self, problem: str) -> None:
        with self._lock:
            self.problems.append(problem)

    def _refuse(self, problem: str) -> tuple[int, bytes]:
        self._note(problem)
        return 400, b"Bad Request"


def read_request(env: etree._Element) -> tuple[list[str], list[str], list[str]]:
    """(problems, mailboxes, settings) of a GetUserSettings envelope."""
    problems = []
    header = env.find(f"{{{SOAP}}}Header")
    assert header is not None  # the caller found wsa:Action in it
    if not header.findtext(f"{{{WSA}}}To"):
        problems.append("no wsa:To header")
    version = header.findtext(ad("RequestedServerVersion"))
    if version is not None and version not in VERSIONS:
        problems.append(f"unknown RequestedServerVersion {version!r}")
    request = env.find(f"{{{SOAP}}}Body/{ad('GetUserSettingsRequestMessage')}/{ad('Request')}")
    if request is None:
        return [*problems, "no GetUserSettingsRequestMessage/Request"], [], []
    parts = [c.tag for c in request if isinstance(c.tag, str)]
    if parts[:2] != [ad("Users"), ad("RequestedSettings")]:
        problems.append(f"Request holds {parts}, not Users, RequestedSettings")
    users = [u.findtext(ad("Mailbox")) or "" for u in request.iterfind(f"{ad('Users')}/*")]
    settings = [s.text or "" for s in request.iterfind(f"{ad('RequestedSettings')}/*")]
    if not users or not all(users):
        problems.append("Users needs User/Mailbox elements with an address")
    if not settings:
        problems.append("RequestedSettings is empty")
    return problems, users, settings


def _response(code: str, message: str, users: list[etree._Element]) -> etree._Element:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP, "a": WSA})
    header = _el(env, f"{{{SOAP}}}Header")
    action = _el(header, f"{{{WSA}}}Action", f"{ACTION}Response")
    action.set(f"{{{SOAP}}}mustUnderstand", "1")
    info = etree.SubElement(header, ad("ServerVersionInfo"), nsmap={"h": AD, "i": XSI})
    for tag, text in (("MajorVersion", "15"), ("MinorVersion", "2"),
                      ("MajorBuildNumber", "2562"), ("MinorBuildNumber", "17"),
                      ("Version", "Exchange2015")):  # fmt: skip
        _el(info, ad(tag), text)
    body = _el(env, f"{{{SOAP}}}Body")
    message_el = etree.SubElement(body, ad("GetUserSettingsResponseMessage"), nsmap={None: AD})
    response = etree.SubElement(message_el, ad("Response"), nsmap={"i": XSI})
    _sub(response, "ErrorCode", code)
    _sub(response, "ErrorMessage", message)
    listing = _sub(response, "UserResponses")
    for user in users:
        listing.append(user)
    return env


def _user_response(code: str, message: str, target: str | None = None) -> etree._Element:
    user = etree.Element(ad("UserResponse"))
    _sub(user, "ErrorCode", code)
    _sub(user, "ErrorMessage", message)
    redirect = _sub(user, "RedirectTarget", target)
    if target is None:
        redirect.set(f"{{{XSI}}}nil", "true")
    _sub(user, "UserSettingErrors")
    _sub(user, "UserSettings")
    return user


def _action_fault(action: str) -> bytes:
    """What WCF answers to an unknown WS-Addressing action (HTTP 500)."""
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    fault = _el(_el(env, f"{{{SOAP}}}Body"), f"{{{SOAP}}}Fault")
    code = etree.SubElement(fault, "faultcode", nsmap={"a": WSA})
    code.text = "a:ActionNotSupported"
    _el(fault, "faultstring", f"The message with Action '{action}' cannot be processed.")
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))


def render(env: etree._Element) -> bytes:
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    return _el(parent, ad(tag), text, **attrib)


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el
