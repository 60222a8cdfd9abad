"""iCalendar VEVENT -> a Graph `event` request body (pure).

Follows the event resource of Graph v1.0: start/end as dateTimeTimeZone
(UTC times as timeZone "UTC", a TZID passed through as named, all-day
events from VALUE=DATE with isAllDay), recurrence from graph_pim_recur.

Deleted occurrences (EXDATE) and changed ones (VEVENTs with RECURRENCE-ID)
cannot be part of the create request: Graph makes them by deleting or
changing the series' instances afterwards. They come back in `later`
({"original": UTC start of the occurrence, "patch": fields | None}) for the
sink to apply; an occurrence's UTC start comes from the calendar's own
VTIMEZONE when it has one of the shape `ical_tz` writes (a Windows zone name
such as "Pacific Standard Time" is no zoneinfo name), else from zoneinfo.
Not carried, and therefore listed in `notes`: those changes
when the series has no Graph pattern or their time zone is unknown here,
a rule Graph has no pattern for (the first occurrence is created),
the organizer (Graph makes the mailbox owner the organizer), and attendees
unless the caller asks for them: Graph sends every attendee an invitation
when an event with attendees is created, which an import must not do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pstkit.converters.graph.pim.contact import PimItem
from pstkit.converters.graph.pim.recur import Unsupported, recurrence
from pstkit.converters.pim.content import Line, lines
from pstkit.converters.pim.ical_tz import zones_in
from pstkit.converters.pim.tzrules import Zone

SHOW_AS = {"FREE": "free", "TENTATIVE": "tentative", "BUSY": "busy", "OOF": "oof",
           "WORKINGELSEWHERE": "workingElsewhere"}  # fmt: skip
SENSITIVITY = {"PUBLIC": "normal", "PRIVATE": "private", "CONFIDENTIAL": "confidential"}
#: what a changed occurrence may differ in (Graph PATCHes an instance with these)
PATCH_KEYS = (
    "subject",
    "body",
    "start",
    "end",
    "location",
    "isReminderOn",
    "reminderMinutesBeforeStart",
    "showAs",
    "sensitivity",
    "importance",
    "categories",
)


@dataclass
class Component:
    name: str
    props: list[Line] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def get(self, name: str) -> Line | None:
        return next((p for p in self.props if p.name == name), None)

    def all(self, name: str) -> list[Line]:
        return [p for p in self.props if p.name == name]


def components(text: str) -> list[Component]:
    """Top-level components inside VCALENDAR (VEVENT, VTODO, VTIMEZONE…)."""
    stack: list[Component] = [Component("ROOT")]
    for line in lines(text):
        if line.name == "BEGIN":
            stack.append(Component(line.value.strip().upper()))
        elif line.name == "END" and len(stack) > 1:
            done = stack.pop()
            stack[-1].children.append(done)
        else:
            stack[-1].props.append(line)
    while len(stack) > 1:  # unterminated: keep what was there
        done = stack.pop()
        stack[-1].children.append(done)
    root = stack[0]
    cals = [c for c in root.children if c.name == "VCALENDAR"]
    return [c for cal in cals for c in cal.children] if cals else root.children


@dataclass(frozen=True)
class When:
    value: datetime
    all_day: bool
    tz: str  # "UTC" or the TZID as written
    floating: bool = False


def when(line: Line) -> When:
    raw = line.value.strip()
    if line.param("VALUE").upper() == "DATE" or len(raw) == 8:
        return When(datetime.strptime(raw[:8], "%Y%m%d"), True, line.param("TZID") or "UTC")
    value = datetime.strptime(raw.rstrip("Zz")[:15], "%Y%m%dT%H%M%S")
    if raw.upper().endswith("Z"):
        return When(value, False, "UTC")
    tzid = line.param("TZID")
    return When(value, False, tzid or "UTC", floating=not tzid)


def graph_time(w: When) -> dict[str, str]:
    return {"dateTime": w.value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": w.tz}


def duration(text: str) -> timedelta:
    """RFC 5545 dur-value, e.g. -PT15M, P1D, -P1W, PT1H30M."""
    t = text.strip().upper()
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-").removeprefix("P")
    total, num = timedelta(), ""
    units = {"W": timedelta(weeks=1), "D": timedelta(days=1), "H": timedelta(hours=1),
             "M": timedelta(minutes=1), "S": timedelta(seconds=1)}  # fmt: skip
    for c in t:
        if c.isdigit():
            num += c
        elif c in units and num:
            total += int(num) * units[c]
            num = ""
        elif c != "T":
            raise ValueError(text)
    return sign * total


def _reminder(ev: Component) -> dict[str, Any]:
    for alarm in (c for c in ev.children if c.name == "VALARM"):
        trigger = alarm.get("TRIGGER")
        if trigger is None or trigger.param("VALUE").upper() == "DATE-TIME":
            continue
        try:
            before = -duration(trigger.value)
        except ValueError:
            continue
        minutes = max(0, before // timedelta(minutes=1))
        return {"isReminderOn": True, "reminderMinutesBeforeStart": minutes}
    return {"isReminderOn": False}


def _attendee(line: Line) -> dict[str, Any]:
    address = line.value.strip()
    address = address[7:] if address.lower().startswith("mailto:") else address
    cutype, role = line.param("CUTYPE").upper(), line.param("ROLE").upper()
    kind = (
        "resource"
        if cutype in ("RESOURCE", "ROOM")
        else "optional"
        if role in ("OPT-PARTICIPANT", "NON-PARTICIPANT")
        else "required"
    )
    return {"type": kind, "emailAddress": {"address": address, "name": line.param("CN")}}


def who(line: Line) -> str:
    address = line.value.strip()
    address = address[7:] if address.lower().startswith("mailto:") else address
    return f"{line.param('CN')} <{address}>".strip() if line.param("CN") else address


def _body(ev: Component) -> dict[str, str]:
    html = next((p for p in ev.all("X-ALT-DESC") if p.param("FMTTYPE").lower() == "text/html"),
                None)  # fmt: skip
    if html is not None:
        return {"contentType": "html", "content": html.text()}
    desc = ev.get("DESCRIPTION")
    return {"contentType": "text", "content": desc.text() if desc else ""}


def _status(ev: Component, body: dict[str, Any]) -> None:
    busy = ev.get("X-MICROSOFT-CDO-BUSYSTATUS")
    transp = ev.get("TRANSP")
    if busy is not None and busy.text().upper() in SHOW_AS:
        body["showAs"] = SHOW_AS[busy.text().upper()]
    elif transp is not None:
        body["showAs"] = "free" if transp.text().upper() == "TRANSPARENT" else "busy"
    cls = ev.get("CLASS")
    if cls is not None and cls.text().upper() in SENSITIVITY:
        body["sensitivity"] = SENSITIVITY[cls.text().upper()]
    prio = ev.get("PRIORITY")
    if prio is not None and prio.text().strip().isdigit() and int(prio.text()) > 0:
        n = int(prio.text())
        body["importance"] = "high" if n <= 4 else "normal" if n == 5 else "low"


def _times(ev: Component, notes: list[str]) -> tuple[When, When]:
    first = ev.get("DTSTART")
    if first is None:
        raise ValueError("the event has no DTSTART")
    start = when(first)
    end_line, dur = ev.get("DTEND"), ev.get("DURATION")
    if end_line is not None:
        end = when(end_line)
    elif dur is not None:
        end = When(start.value + duration(dur.value), start.all_day, start.tz, start.floating)
    else:  # RFC 5545 3.6.1: a day for a date, no time for a date-time
        end = When(start.value + timedelta(days=1 if start.all_day else 0), start.all_day,
                   start.tz, start.floating)  # fmt: skip
    if start.floating:
        notes.append("start/end had no time zone (floating time): taken as UTC")
    return start, end


def event(text: str, invite: bool = False) -> PimItem:
    """The series (or single event) in an iCalendar text, and what Graph does not get."""
    zones = zones_in(text)  # Windows zone names: zoneinfo does not know them
    events = [c for c in components(text) if c.name == "VEVENT"]
    master = next((e for e in events if e.get("RECURRENCE-ID") is None), None)
    if master is None:
        raise ValueError("no VEVENT (only changed occurrences) in the calendar data")
    notes: list[str] = []
    body = _event_body(master, notes, invite)
    later = _deleted(master, notes, zones) if "recurrence" in body else []
    for exc in (e for e in events if e is not master):
        rid = exc.get("RECURRENCE-ID")
        assert rid is not None
        original = utc_of(when(rid), zones) if "recurrence" in body else None
        if original is None:
            notes.append(f"changed occurrence {_stamp(when(rid))} not applied")
            continue
        fields = _event_body(exc, [], invite=False)
        patch = {k: fields[k] for k in PATCH_KEYS if k in fields}
        later.append({"original": original, "patch": patch, "what": _stamp(when(rid))})
    return PimItem(body, tuple(notes), tuple(later))


def utc_of(w: When, zones: dict[str, Zone] | None = None) -> str | None:
    """An occurrence's start in UTC, as Graph's originalStart; None if the zone is unknown.
    A zone defined in the calendar (`zones`) comes before a zoneinfo zone of that name."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    if zones and not w.floating and w.tz in zones:
        return zones[w.tz].to_utc(w.value).strftime(fmt)
    try:
        zone = UTC if w.tz == "UTC" or w.floating else ZoneInfo(w.tz)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return w.value.replace(tzinfo=zone).astimezone(UTC).strftime(fmt)


def _deleted(ev: Component, notes: list[str], zones: dict[str, Zone]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for gone in (when(x) for line in ev.all("EXDATE") for x in _exdates(line)):
        original = utc_of(gone, zones)
        if original is None:
            notes.append(f"deleted occurrence {_stamp(gone)} not applied (unknown time zone)")
        else:
            out.append({"original": original, "patch": None, "what": _stamp(gone)})
    return out


def _stamp(w: When) -> str:
    return w.value.strftime("%Y-%m-%d" if w.all_day else "%Y-%m-%d %H:%M") + (
        "" if w.all_day else f" {w.tz}"
    )


def _event_body(ev: Component, notes: list[str], invite: bool) -> dict[str, Any]:
    start, end = _times(ev, notes)
    summary = ev.get("SUMMARY")
    body: dict[str, Any] = {
        "subject": summary.text() if summary else "",
        "body": _body(ev),
        "start": graph_time(start),
        "end": graph_time(end),
        "isAllDay": start.all_day,
        **_reminder(ev),
    }
    loc = ev.get("LOCATION")
    if loc is not None and loc.text():
        body["location"] = {"displayName": loc.text()}
    cats = [c.strip() for line in ev.all("CATEGORIES") for c in line.parts(",") if c.strip()]
    if cats:
        body["categories"] = cats
    _status(ev, body)
    _people(ev, body, notes, invite)
    _recurrence(ev, start, body, notes)
    return body


def _people(ev: Component, body: dict[str, Any], notes: list[str], invite: bool) -> None:
    org = ev.get("ORGANIZER")
    if org is not None:
        notes.append(f"organizer {who(org)} not kept (Graph makes the mailbox owner organizer)")
    attendees = [_attendee(a) for a in ev.all("ATTENDEE")]
    if attendees and invite:
        body["attendees"] = attendees
    elif attendees:
        names = ", ".join(who(a) for a in ev.all("ATTENDEE"))
        notes.append(f"attendees not added (Graph would invite them): {names}")


def _recurrence(ev: Component, start: When, body: dict[str, Any], notes: list[str]) -> None:
    rrule = ev.get("RRULE")
    if rrule is None:
        if ev.get("X-PSTKIT-RECURRING") is not None:
            notes.append(
                "recurring in the source, but its pattern was unreadable: first occurrence only"
            )
        return
    try:
        body["recurrence"] = recurrence(rrule.value, start.value.date(), start.tz)
    except Unsupported as e:
        notes.append(f"recurrence {rrule.value} has no Graph pattern ({e}): first occurrence only")


def _exdates(line: Line) -> list[Line]:
    return [Line(line.name, v, line.params) for v in line.value.split(",") if v.strip()]
