"""The t:CalendarItem and t:Contact elements CreateItem sends (see ews.calendar, ews.contact).

Each item type's elements must come in its schema sequence (types.xsd): ItemType's
Subject, Body, Attachments, Categories, ReminderIsSet, ReminderMinutesBeforeStart,
ExtendedProperty, then CalendarItemType's Start, End, IsAllDayEvent,
LegacyFreeBusyStatus, Location, Recurrence, StartTimeZone, EndTimeZone, or
ContactItemType's FileAs, DisplayName, GivenName, MiddleName, Nickname,
CompanyName, EmailAddresses, PhysicalAddresses, PhoneNumbers, Birthday,
BusinessHomePage, Department, JobTitle, Surname. `wire.item_xml` calls the
"head" functions before the attachments and the "tail" ones after the
extended properties.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from exchangelib.util import create_element

from pstkit.converters.ews.calendar import CalendarFields
from pstkit.converters.ews.contact import ContactFields
from pstkit.converters.pim.tzrules import Rule, Transition, Zone

DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def text_child(parent: Any, tag: str, text: str, **attrs: str) -> Any:
    child = create_element(tag, attrs=attrs or None)
    child.text = text
    parent.append(child)
    return child


def ews_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- CalendarItem -------------------------------------------------------------------


def calendar_head(item: Any, cal: CalendarFields) -> None:
    text_child(item, "t:Subject", cal.subject)
    if cal.body:
        text_child(item, "t:Body", cal.body, BodyType="Text")


def calendar_reminder(item: Any, cal: CalendarFields) -> None:
    text_child(item, "t:ReminderIsSet", "true" if cal.reminder is not None else "false")
    if cal.reminder is not None:
        text_child(item, "t:ReminderMinutesBeforeStart", str(cal.reminder))


def calendar_tail(item: Any, cal: CalendarFields) -> None:
    text_child(item, "t:Start", ews_time(cal.start))
    text_child(item, "t:End", ews_time(cal.end))
    text_child(item, "t:IsAllDayEvent", "true" if cal.all_day else "false")
    if cal.free_busy:
        text_child(item, "t:LegacyFreeBusyStatus", cal.free_busy)
    if cal.location:
        text_child(item, "t:Location", cal.location)
    if cal.recurrence is not None:
        rec = create_element("t:Recurrence")
        for tag, fields in ((cal.recurrence.pattern, cal.recurrence.pattern_fields),
                            (cal.recurrence.range, cal.recurrence.range_fields)):  # fmt: skip
            el = create_element(f"t:{tag}")
            for name, value in fields:
                text_child(el, f"t:{name}", value)
            rec.append(el)
        item.append(rec)
    if cal.zone is not None:
        item.append(zone_xml("t:StartTimeZone", cal.zone))
        item.append(zone_xml("t:EndTimeZone", cal.zone))


def _bias(offset_minutes: int) -> str:
    """xs:duration of a Period's Bias: minutes *west* of UTC (UTC+01:00 is -PT1H)."""
    bias = -offset_minutes
    hours, minutes = divmod(abs(bias), 60)
    return (
        f"{'-' if bias < 0 else ''}PT{hours}H{minutes}M"
        if minutes
        else (f"{'-' if bias < 0 else ''}PT{hours}H")
    )


def _time_offset(tr: Transition) -> str:
    return f"PT{tr.hour}H{tr.minute}M{tr.second}S"


def zone_xml(tag: str, zone: Zone) -> Any:
    """A full t:TimeZoneDefinition (Periods, TransitionsGroups, Transitions) for `zone`,
    as Exchange writes one: the zone's name need not be a Windows zone id Exchange knows."""
    el = create_element(tag, attrs={"Id": zone.tzid, "Name": zone.tzid})
    periods, groups = create_element("t:Periods"), create_element("t:TransitionsGroups")
    transitions = create_element("t:Transitions")
    for i, rule in enumerate(zone.rules):
        std, dst = f"{zone.tzid}/{i}-Standard", f"{zone.tzid}/{i}-Daylight"
        periods.append(create_element("t:Period", attrs={
            "Bias": _bias(rule.standard), "Name": "Standard", "Id": std}))  # fmt: skip
        if rule.to_daylight is not None:
            periods.append(create_element("t:Period", attrs={
                "Bias": _bias(rule.daylight), "Name": "Daylight", "Id": dst}))  # fmt: skip
        groups.append(_group(str(i), rule, std, dst))
        if i == 0:
            step = create_element("t:Transition")
        else:
            step = create_element("t:AbsoluteDateTransition")
        text_child(step, "t:To", str(i), Kind="Group")
        if i:
            text_child(step, "t:DateTime", f"{zone.years[i]:04d}-01-01T00:00:00")
        transitions.append(step)
    for part in (periods, groups, transitions):
        el.append(part)
    return el


def _group(group_id: str, rule: Rule, std: str, dst: str) -> Any:
    group = create_element("t:TransitionsGroup", attrs={"Id": group_id})
    if rule.to_standard is None or rule.to_daylight is None:
        step = create_element("t:Transition")
        text_child(step, "t:To", std, Kind="Period")
        group.append(step)
        return group
    for target, tr in ((dst, rule.to_daylight), (std, rule.to_standard)):
        step = create_element("t:RecurringDayTransition")
        text_child(step, "t:To", target, Kind="Period")
        text_child(step, "t:TimeOffset", _time_offset(tr))
        text_child(step, "t:Month", str(tr.month))
        text_child(step, "t:DayOfWeek", DAYS[tr.weekday])
        text_child(step, "t:Occurrence", str(-1 if tr.nth == 5 else tr.nth))
        group.append(step)
    return group


# --- Contact ---------------------------------------------------------------------------


def contact_head(item: Any, card: ContactFields) -> None:
    # Exchange derives a contact's Subject from its name; gromox 3.10 leaves it empty.
    text_child(item, "t:Subject", card.display_name)
    if card.body:
        text_child(item, "t:Body", card.body, BodyType="Text")


def contact_tail(item: Any, card: ContactFields) -> None:
    text_child(item, "t:FileAs", card.display_name)
    for tag, value in (("t:DisplayName", card.display_name), ("t:GivenName", card.given),
                       ("t:MiddleName", card.middle), ("t:Nickname", card.nickname),
                       ("t:CompanyName", card.company)):  # fmt: skip
        if value:
            text_child(item, tag, value)
    if card.emails:
        emails = create_element("t:EmailAddresses")
        for n, address in enumerate(card.emails, 1):
            text_child(emails, "t:Entry", address, Key=f"EmailAddress{n}")
        item.append(emails)
    if card.addresses:
        addresses = create_element("t:PhysicalAddresses")
        for a in card.addresses:
            entry = create_element("t:Entry", attrs={"Key": a.key})
            for tag, value in (("t:Street", a.street), ("t:City", a.city), ("t:State", a.state),
                               ("t:CountryOrRegion", a.country),
                               ("t:PostalCode", a.postal_code)):  # fmt: skip
                if value:
                    text_child(entry, tag, value)
            addresses.append(entry)
        item.append(addresses)
    if card.phones:
        phones = create_element("t:PhoneNumbers")
        for key, number in card.phones:
            text_child(phones, "t:Entry", number, Key=key)
        item.append(phones)
    _contact_rest(item, card)


def _contact_rest(item: Any, card: ContactFields) -> None:
    if card.birthday is not None:
        text_child(item, "t:Birthday", card.birthday.strftime("%Y-%m-%dT12:00:00Z"))
    for tag, value in (("t:BusinessHomePage", card.home_page), ("t:Department", card.department),
                       ("t:JobTitle", card.job_title), ("t:Surname", card.surname)):  # fmt: skip
        if value:
            text_child(item, tag, value)
