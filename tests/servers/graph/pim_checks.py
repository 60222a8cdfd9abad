"""Validation of contact and event bodies, as Graph v1.0 documents them.

contact: the writable properties of the contact resource; at most three
emailAddresses (each only `address` and `name`); physicalAddress fields.
event: dateTimeTimeZone start/end (a time zone Graph knows; all-day events
start and end at midnight), the enums of showAs/sensitivity/importance,
and patternedRecurrence: the pattern type's required properties and a
range whose startDate is the event's start date.

Unknown properties are 400 RequestBodyRead (OData); a value of the right
type that Exchange rejects is 400 ErrorPropertyValidationFailure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tests.servers.graph.core import GraphError, bad_request

CONTACT_STRINGS = {
    "assistantName", "businessHomePage", "companyName", "department", "displayName",
    "fileAs", "generation", "givenName", "initials", "jobTitle", "manager", "middleName",
    "mobilePhone", "nickName", "officeLocation", "personalNotes", "profession", "spouseName",
    "surname", "title", "yomiCompanyName", "yomiGivenName", "yomiSurname", "parentFolderId",
}  # fmt: skip
CONTACT_LISTS = {"businessPhones", "homePhones", "imAddresses", "categories", "children"}
ADDRESSES = {"homeAddress", "businessAddress", "otherAddress"}
ADDRESS_FIELDS = {"street", "city", "state", "countryOrRegion", "postalCode"}
CONTACT_KEYS = {*CONTACT_STRINGS, *CONTACT_LISTS, *ADDRESSES, "emailAddresses", "birthday",
                "singleValueExtendedProperties", "@odata.type"}  # fmt: skip

EVENT_KEYS = {
    "subject", "body", "start", "end", "isAllDay", "location", "attendees", "categories",
    "showAs", "sensitivity", "importance", "isReminderOn", "reminderMinutesBeforeStart",
    "recurrence", "singleValueExtendedProperties", "responseRequested", "isOnlineMeeting",
    "allowNewTimeProposals", "hideAttendees", "transactionId", "@odata.type",
}  # fmt: skip
ENUMS = {
    "showAs": {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"},
    "sensitivity": {"normal", "personal", "private", "confidential"},
    "importance": {"low", "normal", "high"},
}
DAYS = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
PATTERNS = {
    "daily": set(),
    "weekly": {"daysOfWeek"},
    "absoluteMonthly": {"dayOfMonth"},
    "relativeMonthly": {"daysOfWeek"},
    "absoluteYearly": {"dayOfMonth", "month"},
    "relativeYearly": {"daysOfWeek", "month"},
}
PATTERN_KEYS = {"type", "interval", "month", "dayOfMonth", "daysOfWeek", "firstDayOfWeek", "index"}
RANGE_KEYS = {"type", "startDate", "endDate", "recurrenceTimeZone", "numberOfOccurrences"}
INDEXES = {"first", "second", "third", "fourth", "last"}
WINDOWS_ZONES = {"UTC", "W. Europe Standard Time", "Pacific Standard Time",
                 "Eastern Standard Time", "GMT Standard Time"}  # fmt: skip


def _unknown(keys: set[str], allowed: set[str], where: str) -> None:
    extra = sorted(keys - allowed)
    if extra:
        raise bad_request(
            f"The property '{extra[0]}' does not exist on type '{where}'. Make sure to only "
            "use property names that are defined by the type.",
            "RequestBodyRead",
        )


def _type_error(name: str, want: str) -> GraphError:
    return bad_request(
        f"Cannot convert the literal in property '{name}' to the expected type '{want}'.",
        "RequestBodyRead",
    )


def invalid(message: str) -> GraphError:
    return GraphError(400, "ErrorPropertyValidationFailure", message)


def check_contact(body: Any) -> None:
    if not isinstance(body, dict):
        raise _type_error("(body)", "microsoft.graph.contact")
    _unknown(set(body), CONTACT_KEYS, "microsoft.graph.contact")
    for key in CONTACT_STRINGS & set(body):
        if not isinstance(body[key], str):
            raise _type_error(key, "Edm.String")
    for key in CONTACT_LISTS & set(body):
        if not isinstance(body[key], list) or not all(isinstance(v, str) for v in body[key]):
            raise _type_error(key, "Collection(Edm.String)")
    for key in ADDRESSES & set(body):
        if not isinstance(body[key], dict):
            raise _type_error(key, "microsoft.graph.physicalAddress")
        _unknown(set(body[key]), ADDRESS_FIELDS, "microsoft.graph.physicalAddress")
    _emails(body.get("emailAddresses", []))
    if "birthday" in body:
        _datetime_offset("birthday", body["birthday"])


def _emails(emails: Any) -> None:
    if not isinstance(emails, list):
        raise _type_error("emailAddresses", "Collection(microsoft.graph.emailAddress)")
    for e in emails:
        if not isinstance(e, dict) or not isinstance(e.get("address", ""), str):
            raise _type_error("emailAddresses", "microsoft.graph.emailAddress")
        _unknown(set(e), {"address", "name"}, "microsoft.graph.emailAddress")
    if len(emails) > 3:
        # Exchange's contact has three e-mail slots (Email1..Email3).
        raise invalid("A contact can have at most 3 email addresses.")


def _datetime_offset(name: str, value: Any) -> None:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as e:
        raise _type_error(name, "Edm.DateTimeOffset") from e


def _zone(tz: Any) -> None:
    if tz in WINDOWS_ZONES:
        return
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not "
            f"supported: '{tz}'.",
        ) from e


def when(name: str, value: Any) -> datetime:
    if not isinstance(value, dict) or set(value) - {"dateTime", "timeZone"}:
        raise _type_error(name, "microsoft.graph.dateTimeTimeZone")
    _zone(value.get("timeZone"))
    try:
        return datetime.fromisoformat(str(value.get("dateTime")))
    except ValueError as e:
        raise _type_error(name, "microsoft.graph.dateTimeTimeZone") from e


def check_event(body: Any) -> None:
    if not isinstance(body, dict):
        raise _type_error("(body)", "microsoft.graph.event")
    _unknown(set(body), EVENT_KEYS, "microsoft.graph.event")
    for key, allowed in ENUMS.items():
        if key in body and body[key] not in allowed:
            raise bad_request(f"Requested value '{body[key]}' was not found.", "RequestBodyRead")
    for key in ("isAllDay", "isReminderOn"):
        if key in body and not isinstance(body[key], bool):
            raise _type_error(key, "Edm.Boolean")
    if "body" in body and (
        not isinstance(body["body"], dict)
        or body["body"].get("contentType") not in ("text", "html")
    ):
        raise _type_error("body", "microsoft.graph.itemBody")
    if "start" not in body or "end" not in body:
        raise invalid("An event needs a start and an end.")
    start, end = when("start", body["start"]), when("end", body["end"])
    if end < start:
        raise invalid("The end time of an event cannot be before its start time.")
    if body.get("isAllDay") and (start.time() != end.time() or start.hour or start.minute):
        raise invalid("An all-day event's start and end must be at midnight.")
    if body.get("recurrence") is not None:
        check_recurrence(body["recurrence"], start)


def check_recurrence(rec: Any, start: datetime) -> None:
    if not isinstance(rec, dict) or set(rec) != {"pattern", "range"}:
        raise _type_error("recurrence", "microsoft.graph.patternedRecurrence")
    pattern, rng = rec["pattern"], rec["range"]
    if not isinstance(pattern, dict) or not isinstance(rng, dict):
        raise _type_error("recurrence", "microsoft.graph.patternedRecurrence")
    _unknown(set(pattern), PATTERN_KEYS, "microsoft.graph.recurrencePattern")
    _unknown(set(rng), RANGE_KEYS, "microsoft.graph.recurrenceRange")
    kind = pattern.get("type")
    if kind not in PATTERNS:
        raise bad_request(f"Requested value '{kind}' was not found.", "RequestBodyRead")
    missing = sorted(k for k in PATTERNS[kind] if not pattern.get(k))
    if missing:
        raise invalid(f"The recurrence pattern {kind} needs {', '.join(missing)}.")
    if not isinstance(pattern.get("interval", 1), int) or pattern.get("interval", 1) < 1:
        raise invalid("The recurrence interval must be a positive number.")
    if set(pattern.get("daysOfWeek", [])) - DAYS or pattern.get("index", "first") not in INDEXES:
        raise bad_request("Requested value was not found.", "RequestBodyRead")
    _check_range(rng, start)


def _check_range(rng: dict[str, Any], start: datetime) -> None:
    kind = rng.get("type")
    if kind not in ("endDate", "noEnd", "numbered"):
        raise bad_request(f"Requested value '{kind}' was not found.", "RequestBodyRead")
    if rng.get("startDate") != start.date().isoformat():
        raise invalid("The recurrence range's startDate must be the event's start date.")
    if kind == "endDate" and not rng.get("endDate"):
        raise invalid("A recurrence range of type endDate needs endDate.")
    if kind == "numbered" and not (
        isinstance(rng.get("numberOfOccurrences"), int) and rng["numberOfOccurrences"] > 0
    ):
        raise invalid("A numbered recurrence range needs a positive numberOfOccurrences.")
    if "recurrenceTimeZone" in rng:
        _zone(rng["recurrenceTimeZone"])


OCCURRENCE_KEYS = {"subject", "body", "start", "end", "location", "isReminderOn",
                   "reminderMinutesBeforeStart", "showAs", "sensitivity", "importance",
                   "categories", "isAllDay"}  # fmt: skip


def check_occurrence(body: Any, merged: dict[str, Any]) -> None:
    """PATCH of one occurrence: event fields only, never a recurrence of its own."""
    if not isinstance(body, dict):
        raise _type_error("(body)", "microsoft.graph.event")
    _unknown(set(body), OCCURRENCE_KEYS, "microsoft.graph.event")
    check_event({k: v for k, v in {**merged, **body}.items() if k in EVENT_KEYS - {"recurrence"}})
