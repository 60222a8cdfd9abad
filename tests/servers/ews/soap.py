"""SOAP envelopes and faults, shaped like the ones Exchange sends."""

from __future__ import annotations

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": SOAP, "m": M, "t": T}

#: What the server says it is (Exchange 2019 CU15 / SE; matches the schema's build).
SERVER_VERSION = {
    "MajorVersion": "15",
    "MinorVersion": "2",
    "MajorBuildNumber": "2562",
    "MinorBuildNumber": "17",
    "Version": "V2017_07_11",
}


def m(tag: str) -> str:
    return f"{{{M}}}{tag}"


def t(tag: str) -> str:
    return f"{{{T}}}{tag}"


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def envelope(body_child: etree._Element) -> etree._Element:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap=NSMAP)
    header = sub(env, f"{{{SOAP}}}Header")
    sub(header, t("ServerVersionInfo"), **SERVER_VERSION)
    sub(env, f"{{{SOAP}}}Body").append(body_child)
    return env


def fault(code: str, message: str, message_xml: list[tuple[str, str, dict[str, str]]]) -> bytes:
    """An EWS SOAP fault (sent with HTTP 500), e.g. ErrorServerBusy.

    `message_xml` holds (tag, text, attributes) children of t:MessageXml.
    """
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    body = sub(env, f"{{{SOAP}}}Body")
    flt = sub(body, f"{{{SOAP}}}Fault")
    code_el = etree.SubElement(flt, "faultcode", nsmap={"a": T})
    code_el.text = f"a:{code}"
    string = sub(flt, "faultstring", message)
    string.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    detail = sub(flt, "detail")
    etree.SubElement(detail, f"{{{E}}}ResponseCode", nsmap={"e": E}).text = code
    etree.SubElement(detail, f"{{{E}}}Message", nsmap={"e": E}).text = message
    if message_xml:
        mx = etree.SubElement(detail, t("MessageXml"), nsmap={"t": T})
        for tag, text, attrs in message_xml:
            sub(mx, t(tag), text, **attrs)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))


def server_busy(backoff_ms: int | None) -> bytes:
    extra = (
        [] if backoff_ms is None else [("Value", str(backoff_ms), {"Name": "BackOffMilliseconds"})]
    )
    return fault(
        "ErrorServerBusy",
        "The server cannot service this request right now. Try again later.",
        extra,
    )


def schema_fault(line: int, column: int, violation: str) -> bytes:
    return fault(
        "ErrorSchemaValidation",
        "The request failed schema validation: " + violation,
        [
            ("LineNumber", str(line), {}),
            ("LinePosition", str(column), {}),
            ("Violation", violation, {}),
        ],
    )


XSI = "http://www.w3.org/2001/XMLSchema-instance"


def gromox_fault(code: str, message: str) -> bytes:
    """A SOAP fault as gromox 3.10 sends it for a request it cannot process: HTTP 200,
    no XML declaration, faultcode "SOAP:Client", no detail (exch/ews/soaputil.cpp)."""
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"SOAP": SOAP, "xsi": XSI})
    sub(env, f"{{{SOAP}}}Header")
    flt = sub(sub(env, f"{{{SOAP}}}Body"), f"{{{SOAP}}}Fault")
    string_type = {f"{{{XSI}}}type": "xsd:string"}
    etree.SubElement(flt, "faultcode", string_type).text = code
    etree.SubElement(flt, "faultstring", string_type).text = message
    return bytes(etree.tostring(env))


def empty_echo(op: str) -> bytes:
    """gromox's answer when its handler left the response unfilled: the request's own
    element, empty, where `<op>Response` belongs."""
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"SOAP": SOAP})
    sub(env, f"{{{SOAP}}}Header")
    sub(sub(env, f"{{{SOAP}}}Body"), m(op))
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))
