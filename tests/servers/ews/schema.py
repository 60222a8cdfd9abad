"""Validate EWS SOAP envelopes against Microsoft's schema (lxml).

No SOAP-envelope schema ships with EWS, so (as ../shared/ews-schema/README.md
says) each child of soap:Header and soap:Body is copied into a tree of its own
and validated alone. Compiling takes ~0.3 s, so compiled schemas are pooled per
process: one per request validated at the same moment.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_LOCK = threading.Lock()
#: compiled schemas not in use, per schema directory. An XMLSchema object keeps
#: its error log on itself, so one object serves one validation at a time; a
#: pool lets concurrent requests validate in parallel (lxml drops the GIL).
_IDLE: dict[Path, list[etree.XMLSchema]] = {}


@dataclass(frozen=True)
class Violation:
    line: int
    column: int
    message: str


def _take(schema_dir: Path) -> etree.XMLSchema:
    with _LOCK:
        idle = _IDLE.setdefault(schema_dir, [])
        if idle:
            return idle.pop()
    # Compiling takes ~0.3 s; it happens once per concurrently used copy per process.
    return etree.XMLSchema(etree.parse(str(schema_dir / "ews-lxml.xsd")))


def _give_back(schema_dir: Path, schema: etree.XMLSchema) -> None:
    with _LOCK:
        _IDLE[schema_dir].append(schema)


class EnvelopeValidator:
    """Checks whole envelopes; safe to use from many threads at once."""

    def __init__(self, schema_dir: Path) -> None:
        self._dir = schema_dir.resolve()
        _give_back(self._dir, _take(self._dir))  # fail early if the schema is broken

    def violations(self, envelope: etree._Element) -> list[Violation]:
        """Everything wrong with `envelope`; empty when it is valid."""
        if envelope.tag != f"{{{SOAP_NS}}}Envelope":
            return [
                Violation(envelope.sourceline or 0, 0, f"root is {envelope.tag}, not soap:Envelope")
            ]
        found: list[Violation] = []
        for part in envelope:
            if part.tag not in (f"{{{SOAP_NS}}}Header", f"{{{SOAP_NS}}}Body"):
                found.append(Violation(part.sourceline or 0, 0, f"unexpected {part.tag}"))
                continue
            for child in part:
                if isinstance(child.tag, str):
                    found.extend(self._one(child))
        return found

    def _one(self, element: etree._Element) -> list[Violation]:
        # A deep copy keeps only the namespaces its element names use; QName-typed
        # attributes (xsi:type="t:…") need every declaration in scope, so re-root it.
        alone = copy.deepcopy(element)
        if set(element.nsmap.items()) - set(alone.nsmap.items()):
            root = etree.Element(alone.tag, dict(alone.attrib), nsmap=element.nsmap)
            root.text = alone.text
            root.extend(list(alone))
            alone = root
        base_line = element.sourceline or 0
        schema = _take(self._dir)
        try:
            if schema.validate(alone):
                return []
            log = list(schema.error_log)
        finally:
            _give_back(self._dir, schema)
        return [Violation(base_line + e.line - 1, e.column, e.message) for e in log]
