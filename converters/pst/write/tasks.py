"""iCalendar VTODO -> the MAPI properties of an Outlook task ([MS-OXOTASK] 2.2.2.2: status,
percent complete, start, due and completion dates, reminder). Pure; the VTODO is read
with `events`' component model."""

from __future__ import annotations

import struct

from pstkit.converters.pst.named import PSETID_TASK
from pstkit.converters.pst.props import PT_DOUBLE

from .events import Component, Ids, alarm, common, moment, named_prop
from .mapi import Prop, boolean, long, systime, unicode


def task(c: Component, ids: Ids) -> list[Prop]:
    """A VTODO -> IPM.Task properties ([MS-OXOTASK] 2.2.2.2)."""
    t = PSETID_TASK
    props = [unicode(0x001A, "IPM.Task"), *common(c)]
    status = {"NEEDS-ACTION": 0, "IN-PROCESS": 1, "COMPLETED": 2, "CANCELLED": 4}.get(
        c.text("STATUS").upper())
    if status is not None:
        props.append(named_prop(ids, t, 0x8101, long(0, status)))
        props.append(named_prop(ids, t, 0x811C, boolean(0, status == 2)))
    pct = c.text("PERCENT-COMPLETE")
    if pct.isdigit():
        props.append(named_prop(ids, t, 0x8102, (0, PT_DOUBLE, struct.pack("<d", int(pct) / 100))))
    start = None
    for lid, name in ((0x8104, "DTSTART"), (0x8105, "DUE"), (0x810F, "COMPLETED")):
        line = c.first(name)
        if line is not None:
            try:
                w = moment(line, {})
            except ValueError:
                continue
            start = w.utc if name == "DTSTART" else start
            props.append(named_prop(ids, t, lid, systime(0, w.utc)))
    return props + alarm(c, ids, start)
