"""Contacts, distribution lists and events written to a PST, read back by libpst and
libpff: corpus PST -> store -> PST, then `readpst -j 0 -D -M` makes the same vCards and
iCalendar files of the written PST as of the Outlook-made one, and pypff finds the same
item classes per folder.

Reader-made differences, listed: readpst's UID is the item's node id and DTSTAMP the
time of the run; its FN is the file-as name, which Aspose-made contacts lack ("(null)")
and the writer sets as Outlook does ("Last, First Middle"); readpst skips
distribution lists. Not compared: LAST-MOD, which readpst takes from another property than the
modification time where an item has none (SampleOstFile.ost, see NOT_KEPT)."""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from pstkit.converters.pst.props import parse_name_map
from pstkit.converters.pst.source import PstSource
from pstkit.converters.pst.write.existing import Existing
from pstkit.converters.pst.write.sink import PstSink
from pstkit.itemfields import stored_fields
from pstkit.location import Location
from pstkit.model import ItemKind
from pstkit.options import ConnectOptions
from pstkit.store import Store
from tests.helpers import cli

from .test_write_cards import calendar
from .test_write_cards import stored as wrap
from .test_write_fuzz import stored

pypff = pytest.importorskip("pypff")
PSTS = ["dist-list.pst", "aspose_SampleContacts.pst", "aspose_source.pst", "SampleOstFile.ost"]
#: lines readpst takes from properties pstkit's store does not keep: SampleOstFile.ost's
#: appointment has no PR_LAST_MODIFICATION_TIME; readpst's CREATED/LAST-MOD there
#: (20110919T211050Z) equal two named time properties of the item (ids 0x8037/0x8145 in
#: that file), not its PR_CREATION_TIME (…211207Z) that pstkit stores as CREATED. (Its
#: busy status, tentative, readpst's STATUS:TENTATIVE, is compared: the store carries it
#: as X-MICROSOFT-CDO-BUSYSTATUS and the writer writes it back.)
NOT_KEPT = {"SampleOstFile.ost": ("CREATED:",)}


def readpst_cards(pst: Path, out: Path, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Folder/file -> the lines of each vCard/iCalendar readpst writes, reader-made lines
    left out."""
    out.mkdir()
    subprocess.run(["readpst", "-q", "-j", "0", "-D", "-M", "-o", str(out), str(pst)],
                   check=True, capture_output=True, timeout=120)
    root = next(out.iterdir())
    found = {}
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        text = f.read_bytes().decode("utf-8", "replace")
        # (in Deleted Items readpst also shows meeting requests, mail to pstkit, as events)
        if text.startswith(("BEGIN:VCARD", "BEGIN:VCALENDAR")) and f.parent.name in (
                "Calendar", "Contacts"):
            found[str(f.relative_to(root))] = [
                line for line in text.splitlines()
                if not line.startswith(("UID:", "DTSTAMP:", "FN:", "LAST-MOD:", *skip))]
    return found


def file_as(pst: Path, out: Path) -> list[str]:
    return sorted(line for f in out.rglob("*") if f.is_file()
                  for line in f.read_bytes().decode("utf-8", "replace").splitlines()
                  if line.startswith("FN:"))


def classes(path: Path) -> dict[str, list[str]]:
    f = pypff.file()
    f.open(str(path))
    out: dict[str, list[str]] = {}

    def walk(folder: object, where: str) -> None:
        for i in range(folder.number_of_sub_messages):  # type: ignore[attr-defined]
            item = folder.get_sub_message(i)  # type: ignore[attr-defined]
            entries = {e.entry_type: e for e in item.record_sets[0].entries}
            cls = entries[0x001A].get_data_as_string() if 0x001A in entries else ""
            out.setdefault(where, []).append(cls)
        for j in range(folder.number_of_sub_folders):  # type: ignore[attr-defined]
            sub = folder.get_sub_folder(j)  # type: ignore[attr-defined]
            walk(sub, f"{where}/{sub.name}")

    walk(f.root_folder, "")
    f.close()
    # mail classes left out: meeting requests are written as IPM.Note (mail writer)
    mail = ("IPM.Note", "IPM.Schedule", "REPORT")
    return {k.split("/")[-1]: sorted(c for c in v if not c.startswith(mail))
            for k, v in out.items() if any(not c.startswith(mail) for c in v)}


@pytest.mark.skipif(shutil.which("readpst") is None, reason="readpst (pst-utils) not installed")
@pytest.mark.parametrize("name", PSTS)
def test_readers_see_the_same_items(corpus: Path, tmp_path: Path, name: str) -> None:
    original, store, pst = corpus / "pst" / name, tmp_path / "s", tmp_path / "w.pst"
    code, _o, err = cli("--quiet", "export", str(original), str(store))
    assert code in (0, 1), err
    code, out, err = cli("--quiet", "import", str(store), f"pst:{pst}")
    assert code == 0, err + out
    before = readpst_cards(original, tmp_path / "a", NOT_KEPT.get(name, ()))
    after = readpst_cards(pst, tmp_path / "b", NOT_KEPT.get(name, ()))
    assert before, "the corpus file has contacts or events"
    assert sorted(after.values()) == sorted(before.values())
    names = file_as(pst, tmp_path / "b")
    assert all(n != "FN:(null)" for n in names)
    assert len(names) == len(file_as(original, tmp_path / "a"))
    written = classes(pst)
    made = classes(original)
    for folder, kinds in made.items():
        kept = [k for k in kinds if not k.startswith("IPM.Microsoft.ScheduleData")]
        assert written.get(folder, []) == kept, folder


def pypff_items(folder: Any) -> list[Any]:
    """Every message of a pypff folder and its subfolders."""
    own = [folder.get_sub_message(i) for i in range(folder.number_of_sub_messages)]
    return own + [m for i in range(folder.number_of_sub_folders)
                  for m in pypff_items(folder.get_sub_folder(i))]


def outlook_named(path: Path, cls: str) -> dict[tuple[str, int | str], tuple[int, bytes]]:
    """The named properties (by property set and LID) of the first item of class `cls`."""
    source = PstSource(Location("pst", str(path)), ConnectOptions())
    streams = {pid: raw for pid, _t, raw in source._node_entries(0x61, "name_map", "")}
    ids = {v: k for k, v in parse_name_map(streams.get(2, b""), streams.get(3, b""),
                                           streams.get(4, b"")).items()}
    f = pypff.file()
    f.open(str(path))
    for item in pypff_items(f.root_folder):
        entries = list(item.record_sets[0].entries)
        found = {e.entry_type: e for e in entries}
        if 0x1A in found and found[0x1A].get_data_as_string() == cls:
            out = {ids[e.entry_type]: (e.value_type, bytes(e.data or b""))
                   for e in entries if e.entry_type in ids}
            f.close()
            return out
    f.close()
    raise AssertionError(f"no {cls} in {path}")


APPOINTMENT = "00062002-0000-0000-c000-000000000046"
ADDRESS = "00062004-0000-0000-c000-000000000046"
#: properties whose bytes equal those Outlook wrote in dist-list.pst: the recurrence blob
#: with its exceptions, the three time zone definitions, clip start/end; a contact's
#: e-mail address fields, file-as and address book list; the list's one-off members
SAME_AS_OUTLOOK = {
    "IPM.Appointment": [(APPOINTMENT, lid) for lid in (0x8216, 0x825E, 0x825F, 0x8260, 0x8233,
                                                       0x8235, 0x8236, 0x8223, 0x8215)],
    "IPM.Contact": [(ADDRESS, lid) for lid in (0x8080, 0x8082, 0x8083, 0x8084, 0x8085, 0x8005,
                                               0x8006, 0x8028, 0x8029)],
    "IPM.DistList": [(ADDRESS, lid) for lid in (0x8053, 0x8054, 0x8005, 0x8006)],
}


@pytest.mark.parametrize("cls", sorted(SAME_AS_OUTLOOK))
def test_properties_equal_those_outlook_wrote(corpus: Path, tmp_path: Path, cls: str) -> None:
    original, store, pst = corpus / "pst" / "dist-list.pst", tmp_path / "s", tmp_path / "w.pst"
    assert cli("--quiet", "export", str(original), str(store))[0] == 0
    assert cli("--quiet", "import", str(store), f"pst:{pst}")[0] == 0
    want, got = outlook_named(original, cls), outlook_named(pst, cls)
    for name in SAME_AS_OUTLOOK[cls]:
        assert want.get(name) is not None and got.get(name) == want.get(name), name


def _libpst_rule(line: str) -> dict[str, object]:
    """readpst's RRULE (libpst 0.6.76 separates BYDAY values with ';' and writes the last
    weekday of a month as BYSETPOS=5) -> comparable parts."""
    parts: dict[str, object] = {"INTERVAL": "1"}
    key = ""
    for item in line.removeprefix("RRULE:").split(";"):
        name, eq, value = item.partition("=")
        if not eq and key == "BYDAY":
            parts["BYDAY"] = {*parts["BYDAY"], name}  # type: ignore[misc]
            continue
        key = name
        parts[name] = set(value.split(",")) if name == "BYDAY" else value
    if parts.get("BYSETPOS") == "5":
        parts["BYSETPOS"] = "-1"
    parts.pop("BYMONTH", None)  # libpst adds the start's month to yearly rules
    return parts


@pytest.mark.skipif(shutil.which("readpst") is None, reason="readpst (pst-utils) not installed")
@pytest.mark.parametrize("seed", [1, 2])
def test_readpst_decodes_the_recurrence_blobs(tmp_path: Path, seed: int) -> None:
    """libpst's own decoder of PidLidAppointmentRecur reads the rule of seeded random
    series back (frequency, interval, count, weekdays, month day, nth weekday)."""
    rnd = random.Random(seed)
    days = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
    out, rules = tmp_path / "r.pst", {}
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.ensure_folder(("Calendar",), None)
    for i in range(30):
        start = date(2020, 1, 1) + timedelta(days=rnd.randrange(1500))
        freq, n, count = rnd.choice(("DAILY", "WEEKLY", "MONTHLY", "YEARLY")), rnd.randrange(
            1, 4), rnd.randrange(2, 20)
        want: dict[str, object] = {"FREQ": freq, "COUNT": str(count), "INTERVAL": str(n)}
        by = ""
        if freq == "WEEKLY":
            picked = {days[d] for d in rnd.sample(range(7), rnd.randrange(1, 4))}
            by, want["BYDAY"] = ";BYDAY=" + ",".join(sorted(picked)), picked
        elif freq == "MONTHLY" and rnd.random() < 0.5:
            day, pos = days[rnd.randrange(7)], rnd.choice((1, 2, 3, 4, -1))
            by, want["BYDAY"], want["BYSETPOS"] = f";BYDAY={day};BYSETPOS={pos}", {day}, str(pos)
        elif freq != "DAILY":
            want["BYMONTHDAY"] = str(start.day)
        if freq == "YEARLY":
            want.pop("INTERVAL")  # libpst writes no INTERVAL for yearly series
            n = 1
        rule = f"FREQ={freq};INTERVAL={n}{by};COUNT={count}"
        rules[f"r{i}"] = {k: v for k, v in want.items() if not (k == "INTERVAL" and v == "1")}
        ev = (f"BEGIN:VEVENT\nUID:u{i}\nDTSTAMP:20240101T000000Z\nDTSTART:{start:%Y%m%d}T093000Z"
              f"\nDTEND:{start:%Y%m%d}T103000Z\nSUMMARY:r{i}\nRRULE:{rule}\nEND:VEVENT\n")
        raw = wrap("IPM.Appointment", f"r{i}", "", "e.ics", "text/calendar", calendar(ev))
        msg = replace(stored(i), kind=ItemKind.EVENT, folder=("Calendar",))
        assert sink.put_batch(("Calendar",), [(msg, raw)])[0].note == ""  # type: ignore[union-attr]
    sink.close()
    got = readpst_rules(out, tmp_path / "rp")
    for name, want in rules.items():
        parts = _libpst_rule(got[name])
        if parts.get("INTERVAL") == "1":
            parts.pop("INTERVAL")
        assert parts == want and len(parts) >= 2, (name, got[name])


def readpst_rules(pst: Path, out: Path) -> dict[str, str]:
    out.mkdir()
    subprocess.run(["readpst", "-q", "-j", "0", "-D", "-M", "-o", str(out), str(pst)],
                   check=True, capture_output=True, timeout=120)
    found = {}
    for f in (p for p in out.rglob("*") if p.is_file()):
        lines = f.read_text(errors="replace").splitlines()
        summary = next((x[8:] for x in lines if x.startswith("SUMMARY:")), "")
        found[summary] = next((x for x in lines if x.startswith("RRULE:")), "")
    return found


def test_verify_compares_contact_and_event_fields(corpus: Path, tmp_path: Path) -> None:
    """A PST pstkit wrote reports each contact's name and addresses and each event's start
    and end (`Existing`), equal to what the store holds; verify passes on them."""
    store, pst = tmp_path / "s", tmp_path / "w.pst"
    assert cli("--quiet", "export", str(corpus / "pst" / "aspose_source.pst"), str(store))[0] == 0
    assert cli("--quiet", "import", str(store), f"pst:{pst}")[0] == 0
    existing = Existing.open(pst)
    reported = {item.subject: dict(item.fields) for folder in (("Contacts",), ("Calendar",))
                for item in existing.items(folder)}
    existing.close()
    with Store.open(store) as st:
        stored_ = {row.msg.subject: stored_fields(row.msg.kind, st.read(row))
                   for row in st.rows() if row.msg.kind is not ItemKind.MAIL}
    assert {k: v for k, v in stored_.items() if v} == {k: reported[k] for k in stored_ if
                                                        stored_[k]}
    assert any("emails" in v for v in reported.values())
    assert any("start" in v for v in reported.values())
    code, out, _err = cli("verify", str(store), f"pst:{pst}")
    assert code == 0 and "0 differing" in out, out
