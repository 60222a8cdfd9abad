"""What every PST item read needs before its kind is known: the named properties the reader
resolves (`NAMED`), the class of an appointment's exception and a meeting's iTIP method.

Kept apart from `pst.cards` and `pst.ical` so a mailbox of plain mail never imports the
vCard/iCalendar writers and their time zone code (issue 19, start-up).
"""

from __future__ import annotations

PSETID_ADDRESS = "00062004-0000-0000-c000-000000000046"
PSETID_APPOINTMENT = "00062002-0000-0000-c000-000000000046"
PSETID_TASK = "00062003-0000-0000-c000-000000000046"
PSETID_LOG = "0006200a-0000-0000-c000-000000000046"
PSETID_COMMON = "00062008-0000-0000-c000-000000000046"
PSETID_MEETING = "6ed8da90-450b-101b-98da-00aa003f1305"

#: (property set, LID) -> the key the item's Props carry it under.
NAMED: dict[tuple[str, int], str] = {
    (PSETID_ADDRESS, 0x8005): "FileUnder",
    (PSETID_ADDRESS, 0x8083): "Email1",
    (PSETID_ADDRESS, 0x8093): "Email2",
    (PSETID_ADDRESS, 0x80A3): "Email3",
    (PSETID_ADDRESS, 0x801A): "HomeAddress",  # the whole address, as Outlook shows it
    (PSETID_ADDRESS, 0x801B): "WorkAddress",
    (PSETID_ADDRESS, 0x801C): "OtherAddress",
    (PSETID_ADDRESS, 0x8045): "WorkStreet",
    (PSETID_ADDRESS, 0x8046): "WorkCity",
    (PSETID_ADDRESS, 0x8047): "WorkState",
    (PSETID_ADDRESS, 0x8048): "WorkPostalCode",
    (PSETID_ADDRESS, 0x8049): "WorkCountry",
    (PSETID_ADDRESS, 0x804A): "WorkPOBox",
    (PSETID_ADDRESS, 0x8053): "DistListName",
    (PSETID_ADDRESS, 0x8054): "DistListOneOff",
    (PSETID_ADDRESS, 0x8055): "DistListMembers",
    (PSETID_APPOINTMENT, 0x820D): "Start",
    (PSETID_APPOINTMENT, 0x820E): "End",
    (PSETID_APPOINTMENT, 0x8208): "Location",
    (PSETID_APPOINTMENT, 0x8215): "AllDay",
    (PSETID_APPOINTMENT, 0x8223): "Recurring",
    (PSETID_APPOINTMENT, 0x8216): "AppointmentRecur",
    (PSETID_APPOINTMENT, 0x8228): "ExceptionReplaceTime",
    (PSETID_APPOINTMENT, 0x8233): "TimeZoneStruct",
    (PSETID_APPOINTMENT, 0x8234): "TimeZoneDescription",
    (PSETID_APPOINTMENT, 0x8260): "TzDefRecur",
    (PSETID_APPOINTMENT, 0x825E): "TzDefStart",
    (PSETID_APPOINTMENT, 0x8205): "BusyStatus",
    (PSETID_APPOINTMENT, 0x8224): "IntendedBusyStatus",
    (PSETID_APPOINTMENT, 0x8218): "ResponseStatus",
    (PSETID_APPOINTMENT, 0x8201): "AppointmentSequence",
    (PSETID_APPOINTMENT, 0x8257): "CounterProposal",
    (PSETID_APPOINTMENT, 0x8250): "ProposedStart",
    (PSETID_APPOINTMENT, 0x8251): "ProposedEnd",
    (PSETID_APPOINTMENT, 0x8259): "ProposalNumber",  # PidLidAppointmentProposalNumber
    (PSETID_APPOINTMENT, 0x8261): "ForwardNotificationRecipients",
    (PSETID_APPOINTMENT, 0x825D): "UnsendableRecipients",  # PidLidAppointmentUnsendable...
    (PSETID_MEETING, 0x0003): "GlobalObjectId",
    (PSETID_MEETING, 0x0001): "AttendeeCriticalChange",
    (PSETID_MEETING, 0x001A): "OwnerCriticalChange",
    (PSETID_COMMON, 0x8503): "ReminderSet",
    (PSETID_COMMON, 0x8501): "ReminderDelta",
    (PSETID_TASK, 0x8104): "TaskStart",
    (PSETID_TASK, 0x8105): "TaskDue",
    (PSETID_TASK, 0x8101): "TaskStatus",
    (PSETID_TASK, 0x8102): "PercentComplete",
    (PSETID_TASK, 0x810F): "TaskCompleted",
    (PSETID_LOG, 0x8700): "LogType",
    (PSETID_LOG, 0x8706): "LogStart",
    (PSETID_LOG, 0x8708): "LogEnd",
}

#: PidLidBusyStatus / PidLidIntendedBusyStatus values ([MS-OXOCAL] 2.2.1.2, 2.2.6.4) by
#: their X-MICROSOFT-CDO-BUSYSTATUS names ([MS-OXCICAL] 2.1.3.1.1.20.31); the reader
#: writes them, the writer reads them
BUSY_STATUS = {"FREE": 0, "TENTATIVE": 1, "BUSY": 2, "OOF": 3, "WORKINGELSEWHERE": 4}

#: PidTagRecipientTrackStatus ([MS-OXOCAL] 2.2.4.10.2) by PARTSTAT; the reader writes
#: respNone (0) and anything else as NEEDS-ACTION, the writer reads them as respNone
TRACK_STATUS = {"TENTATIVE": 2, "ACCEPTED": 3, "DECLINED": 4}
#: PidLidResponseStatus (2.2.1.11) of an attendee's copy by its X-PSTKIT-RESPONSE-STATUS
#: name (respNone, respTentative .. respNotResponded); the organizer's is respOrganized
RESPONSE_STATUS = {"NONE": 0, "TENTATIVE": 2, "ACCEPTED": 3, "DECLINED": 4, "NOT-RESPONDED": 5}

#: the class of a Meeting Forward Notification ([MS-OXOCAL] 2.2.9), lower case
FORWARD_CLASS = "ipm.schedule.meeting.notification.forward"

#: message class of an appointment exception's embedded item, lower case
EXCEPTION_CLASS = "ipm.ole.class.{00061055-0000-0000-c000-000000000046}"

#: the fixed head of every PidLidGlobalObjectId ([MS-OXOCAL] 2.2.1.27: "Byte Array ID")
GOID_HEAD = bytes.fromhex("040000008200E00074C5B7101A82E008")


def clean_global_object_id(goid: bytes) -> bytes:
    """PidLidCleanGlobalObjectId (2.2.1.28): the global object id with year, month and
    day zeroed (the writer stores it; the reader makes a UID of it)."""
    return goid[:16] + b"\0\0\0\0" + goid[20:]


def is_meeting(message_class: str) -> bool:
    """A meeting item (IPM.Schedule.Meeting.*): the reader gives it its iCalendar."""
    return message_class.lower().startswith("ipm.schedule.meeting.")


def meeting_method(message_class: str, counter: bool = False) -> str:
    """iTIP method of a meeting item (IPM.Schedule.Meeting.*), "" for other classes and
    for those iTIP has none for (a forward notification, IPM.Schedule.Meeting.
    Notification.*); a response that is a counter proposal (PidLidAppointmentCounter
    Proposal, [MS-OXOCAL] 2.2.7.6) is a COUNTER ([MS-OXCICAL] 2.1.3.1.1.1)."""
    c = message_class.lower()
    if not is_meeting(c) or c.startswith("ipm.schedule.meeting.notification"):
        return ""
    if c.startswith("ipm.schedule.meeting.resp."):
        return "COUNTER" if counter else "REPLY"
    return "CANCEL" if c.startswith("ipm.schedule.meeting.canceled") else "REQUEST"
