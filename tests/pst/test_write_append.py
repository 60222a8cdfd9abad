"""Appending to a PST pstkit wrote (`pst:OUT.pst` that exists): a re-run delivers nothing
twice (ledger; with the ledger lost, the stable key in the file), new items and folders
are appended, a second store goes into the same PST, every earlier item comes through
byte for byte (its blocks, pstkit's and libpff's view of its properties), the checker and
three readers read the appended file as a fresh one; a foreign PST is refused; a split
set gets a new part; a killed append leaves the earlier file unchanged."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pypff
import pytest

from pstkit.converters.pst.btree import Ndb
from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.sink import PstSink
from pstkit.errors import TargetWriteError
from pstkit.importing import make_plan
from pstkit.location import Location
from pstkit.model import FolderPath, Role, StoredMessage
from pstkit.options import ConnectOptions, MappingOptions
from pstkit.store import Store
from tests.helpers import REPO, as_killed, kill_when, make_message, run_pstkit, write_maildir

from .test_write_readers import _compare
from .write_readers import from_mime, libpff_read, pstkit_read, readpst_read


def _export(md: Path, store: Path) -> None:
    done = run_pstkit("--quiet", "export", f"maildir:{md}", str(store))
    assert done.returncode == 0, done.stderr


def _import(store: Path, pst: Path, *more: str) -> dict[str, int]:
    """Import; the run's summary (done, already...)."""
    done = run_pstkit("--json", "--quiet", "import", str(store), f"pst:{pst}", *more)
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, int] = json.loads(done.stdout)["summary"]
    return summary


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _clean(pst: Path) -> None:
    with pst.open("rb") as f:
        assert check(f).findings == []


def _message_blocks(pst: Path) -> dict[int, str]:
    """Every message node: a digest of its data tree's blocks and, recursively, of its
    sub-nodes' blocks (recipients, attachments, embedded messages, large values)."""
    with pst.open("rb") as f:
        ndb = Ndb.open(f)

        def tree(data: int, sub: int, h: hashlib._Hash) -> None:
            for block in ndb.blocks(data):
                h.update(len(block).to_bytes(4, "little") + block)
            for nid, (d, s) in sorted(ndb.subnodes(sub).items()):
                h.update(nid.to_bytes(4, "little"))
                tree(d, s, h)

        out = {}
        for nid, _parent in ndb.nodes():
            if nid & 0x1F == 0x04:
                h = hashlib.sha256()
                tree(*ndb.node(nid), h)
                out[nid] = h.hexdigest()
        return out


def _record_sets(item: object) -> list[tuple[int, int, bytes]]:
    return [(e.entry_type, e.value_type, bytes(e.data or b""))
            for rs in getattr(item, "record_sets", []) for e in rs.entries]


def _libpff_props(pst: Path) -> dict[int, list[object]]:
    """libpff's view of every message: all its properties, its recipients' and its
    attachments' properties and attachment data, by NID."""
    f = pypff.file()
    f.open(str(pst))
    out: dict[int, list[object]] = {}
    try:
        todo = [f.get_root_folder()]
        while todo:
            folder = todo.pop()
            todo += [folder.get_sub_folder(i) for i in range(folder.number_of_sub_folders)]
            for j in range(folder.number_of_sub_messages):
                msg = folder.get_sub_message(j)
                rec = msg.recipients
                seen: list[object] = [_record_sets(msg), _record_sets(rec) if rec else []]
                for k in range(msg.number_of_attachments):
                    a = msg.get_attachment(k)
                    seen += [_record_sets(a), a.read_buffer(a.size) if a.size else b""]
                out[msg.identifier] = seen
    finally:
        f.close()
    return out


def _expected(stores: list[Path], pst: Path) -> dict[FolderPath, list[bytes]]:
    """Per PST folder the raw messages in delivery order: the first store's, then the
    next's (mapped to PST folders as the import maps them)."""
    out: dict[FolderPath, list[bytes]] = {}
    for store in stores:
        with Store.open(store) as st:
            sink = PstSink(Location("pst", str(pst)), ConnectOptions())
            for entry in make_plan(st, sink, MappingOptions()):
                out.setdefault(entry.target, []).extend(st.read(r)
                                                        for r in st.rows(entry.source.id))
            sink.close()
    return {f: raws for f, raws in out.items() if raws}


def _forget_deliveries(store: Path) -> None:
    with sqlite3.connect(store / "catalog.sqlite") as db:
        db.execute("DELETE FROM deliveries")


def test_two_corpus_stores_into_one_pst(corpus: Path, tmp_path: Path) -> None:
    """A directory of .eml files, then an mbox appended: the earlier items' bytes and properties are
    unchanged, three readers read every item of both, re-runs deliver nothing."""
    a, b, pst = tmp_path / "a", tmp_path / "b", tmp_path / "out.pst"
    for source, store in ((f"eml:{corpus}/eml", a),
                          (f"mbox:{corpus}/mbox/tika_testMBOX_complex.mbox", b)):
        done = run_pstkit("--quiet", "export", source, str(store))
        assert done.returncode in (0, 1), done.stderr
    _import(a, pst)
    blocks, props = _message_blocks(pst), _libpff_props(pst)
    assert blocks and len(props) == len(blocks)
    _import(b, pst)
    _clean(pst)
    after_blocks, after_props = _message_blocks(pst), _libpff_props(pst)
    assert {n: after_blocks[n] for n in blocks} == blocks  # byte for byte, same NIDs
    assert {n: after_props[n] for n in props} == props
    expected = _expected([a, b], pst)
    assert sum(map(len, expected.values())) == len(after_blocks) > len(blocks)
    got = {f: [from_mime(r) for r in raws] for f, raws in pstkit_read(pst).items()}
    assert _compare("pstkit", expected, got) == []
    assert _compare("libpff", expected, libpff_read(pst)) == []
    shown = readpst_read(pst, tmp_path / "readpst")
    assert _compare("readpst", expected,
                    {f: [from_mime(r, names=False) for r in raws] for f, raws in shown.items()
                     }) == []
    # re-runs: by the ledger, and with the ledger lost by the stable keys in the file
    before = _sha(pst)
    for store in (a, b):
        n = sum(1 for raws in _expected([store], pst).values() for _r in raws)
        summary = _import(store, pst)
        assert (summary["done"], summary["already"]) == (0, n)
        _forget_deliveries(store)
        summary = _import(store, pst)  # each found by its stable key: a duplicate
        assert (summary["done"], summary["already"]) == (0, 0)
        assert _sha(pst) == before  # nothing to append: the file is not even rewritten
    assert _message_blocks(pst) == after_blocks


def _mail(tmp_path: Path, ids: range, extra: dict[str, list[int]] | None = None) -> Path:
    folders = {"": [(make_message(i), "S" if i % 2 else "") for i in ids],
               ".Projekte": [], ".Projekte.Alt": [(make_message(1000 + i), "S") for i in ids]}
    for name, more in (extra or {}).items():
        folders[name] = [(make_message(i), "") for i in more]
    md = tmp_path / "md"
    shutil.rmtree(md, ignore_errors=True)
    write_maildir(md, folders)
    return md


def _counts(pst: Path) -> dict[FolderPath, int]:
    return {f: len(r) for f, r in pstkit_read(pst).items() if r}


def test_new_items_and_folders_are_appended_and_verify_matches(tmp_path: Path) -> None:
    store, pst = tmp_path / "store", tmp_path / "out.pst"
    _export(_mail(tmp_path, range(4)), store)
    _import(store, pst)
    first = _counts(pst)
    assert first == {("Inbox",): 4, ("Projekte", "Alt"): 4}
    _export(_mail(tmp_path, range(7), {".Neu 😀": [50, 51]}), store)  # 3 + 3 + 2 new
    _import(store, pst)
    _clean(pst)  # counts in the folder tables equal the items (the checker compares them)
    assert _counts(pst) == {("Inbox",): 7, ("Projekte", "Alt"): 7, ("Neu 😀",): 2}
    assert libpff_read(pst).keys() >= {("Inbox",), ("Projekte",), ("Neu 😀",)}
    ver = run_pstkit("--json", "--quiet", "verify", "--all", str(store), f"pst:{pst}")
    assert ver.returncode == 0, ver.stdout
    assert '"missing": 0' in ver.stdout and '"extra": 0' in ver.stdout
    # a second store into the same PST: its items beside the first store's, but not the
    # mail the file already holds (the same Message-ID in the same folder: a duplicate,
    # as in any target; found by the Message-ID in the file, the stable keys differ)
    other = tmp_path / "other"
    md2 = tmp_path / "md2"
    write_maildir(md2, {"": [(make_message(i), "") for i in (0, 1, 2, 200, 201)]})
    _export(md2, other)
    summary = _import(other, pst)
    assert summary["done"] == 2 and summary["folders"]["Inbox"]["duplicate"] == 3, summary
    _clean(pst)
    assert _counts(pst)[("Inbox",)] == 9


def test_a_foreign_pst_is_refused_and_left_alone(corpus: Path, tmp_path: Path) -> None:
    store, pst = tmp_path / "store", tmp_path / "out.pst"
    _export(_mail(tmp_path, range(2)), store)
    shutil.copy(corpus / "pst" / "pstsdk_sample1.pst", pst)  # made by Outlook
    before = _sha(pst)
    done = run_pstkit("--quiet", "import", str(store), f"pst:{pst}")
    assert done.returncode == 3, done.stderr
    assert "not written by pstkit" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 2  # the error and its hint
    assert _sha(pst) == before and not list(tmp_path.glob("*.pstkit-tmp"))


def _message_ids(pst: Path) -> Counter[str]:
    from .test_write_split import _message_ids as ids  # noqa: PLC0415 - one reader for both
    return ids(pst)


def test_a_split_set_gets_a_new_part(tmp_path: Path) -> None:
    store, out = tmp_path / "store", tmp_path / "out.pst"
    md = tmp_path / "md"
    write_maildir(md, {"": [(make_message(i, size=150_000), "S") for i in range(14)]})
    _export(md, store)
    _import(store, out, "--max-size", "1MB")
    parts = sorted(tmp_path.glob("out-*.pst"))
    assert len(parts) >= 2
    sums = [_sha(p) for p in parts]
    _import(store, out, "--max-size", "1MB")  # nothing new: no part is made
    assert sorted(tmp_path.glob("out-*.pst")) == parts
    write_maildir(md, {"": [(make_message(i, size=150_000), "S") for i in range(17)]})
    _export(md, store)
    _import(store, out, "--max-size", "1MB")
    now = sorted(tmp_path.glob("out-*.pst"))
    assert now[: len(parts)] == parts and len(now) > len(parts)
    assert [_sha(p) for p in parts] == sums
    total: Counter[str] = Counter()
    for p in now:
        _clean(p)
        total += _message_ids(p)
    assert total == Counter(f"<m{i}@test.example>" for i in range(17))
    # one earlier file and --max-size: refused in one line when something is to be added
    _import(store, tmp_path / "one.pst")
    write_maildir(md, {"": [(make_message(i, size=150_000), "S") for i in range(18)]})
    _export(md, store)
    done = run_pstkit("--quiet", "import", str(store), f"pst:{tmp_path / 'one.pst'}",
                      "--max-size", "1MB")
    assert done.returncode == 3 and "append to it without --max-size" in done.stderr


def _delivered(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store / 'catalog.sqlite'}?mode=ro", uri=True,
                             timeout=0.05) as db:
            sql = "SELECT count(*) FROM deliveries WHERE how = 'delivered'"
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # locked by the writer this moment
        return -1


#: (what the moment is measured by, seed): the work file's size (carrying the earlier file,
#: writing new items, B-trees, maps, header), or the ledger's rows (a batch of new items
#: recorded as delivered while the appended file is not yet in place)
KILLS = [("size", 1), ("size", 2), ("size", 3), ("ledger", 1), ("ledger", 2)]


@pytest.mark.parametrize(("by", "seed"), KILLS)
def test_a_killed_append_leaves_the_earlier_file(tmp_path: Path, by: str, seed: int) -> None:
    """SIGKILL an append at a seeded moment: the earlier file is byte for byte what it was
    (or, if the append had finished, whole); a re-run ends with every message exactly
    once, also when the killed run had recorded deliveries into the file that never got
    in place."""
    store, pst = tmp_path / "store", tmp_path / "out.pst"
    md = tmp_path / "md"
    write_maildir(md, {"": [(make_message(i, size=40_000), "S") for i in range(60)]})
    _export(md, store)
    _import(store, pst)
    before, size, rows = _sha(pst), pst.stat().st_size, _delivered(store)
    write_maildir(md, {"": [(make_message(i, size=40_000), "S") for i in range(200)]})
    _export(md, store)
    rng = random.Random(seed)
    # the new file is about 3.3 times the earlier one; the 140 new items are recorded in
    # batches of 100 and 40 (the sink's batch limit): the kill comes after the first
    at = rng.randrange(size // 20, size * 7 // 2) if by == "size" else rows + rng.choice(
        (50, 100))
    work = pst.with_name(pst.name + ".pstkit-tmp")
    proc = subprocess.Popen([sys.executable, "-m", "pstkit", "--quiet", "import", str(store),
                             f"pst:{pst}"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: ((work.stat().st_size if work.exists() else 0) if by == "size"
                             else _delivered(store)) >= at)  # fmt: skip
    assert proc.returncode in (0, -signal.SIGKILL)
    if by == "ledger":
        assert proc.returncode == -signal.SIGKILL and _delivered(store) >= at
    want = Counter(f"<m{i}@test.example>" for i in range(200))
    if _sha(pst) != before:  # the append got to its rename: the new file is whole
        _clean(pst)
        assert _message_ids(pst) == want
    _import(store, pst)
    _clean(pst)
    assert _message_ids(pst) == want
    assert not work.exists()


def _key(out: Path) -> str:
    sink = PstSink(Location("pst", str(out)), ConnectOptions(extra={"max-size": "1MB"}))
    sink.close()
    return sink.key


def test_after_a_killed_split_append_the_set_gets_a_new_ledger_key(tmp_path: Path) -> None:
    """A run that died leaves a work part, and its ledger rows may name items that never
    got in place: the next import gives the first part a new record key (a new ledger
    key; what is there is found by stable key), plan and verify write nothing, and from
    then on the key is stable again."""
    store, out, md = tmp_path / "store", tmp_path / "out.pst", tmp_path / "md"
    write_maildir(md, {"": [(make_message(i, size=150_000), "S") for i in range(10)]})
    _export(md, store)
    _import(store, out, "--max-size", "1MB")
    parts, first_key = sorted(tmp_path.glob("out-*.pst")), _key(out)
    sums = [_sha(p) for p in parts]
    dead = PstSink(Location("pst", str(out)), ConnectOptions(extra={"max-size": "1MB"}))
    dead.ensure_folder(("Inbox",), Role.INBOX)
    dead.put_batch(("Inbox",), [(StoredMessage(
        99, ("Inbox",), "", 0, frozenset(), frozenset(), datetime(2024, 5, 1, tzinfo=UTC),
        "<x@y>", "", "99", "e"), make_message(99))])  # no close: killed
    as_killed(dead)
    assert list(tmp_path.glob("*.pstkit-tmp"))
    ver = run_pstkit("--quiet", "verify", str(store), f"pst:{out}")
    assert ver.returncode == 0, ver.stdout + ver.stderr
    assert [_sha(p) for p in parts] == sums  # verify wrote nothing
    write_maildir(md, {"": [(make_message(i, size=150_000), "S") for i in range(12)]})
    _export(md, store)
    _import(store, out, "--max-size", "1MB")
    now = sorted(tmp_path.glob("out-*.pst"))
    assert len(now) > len(parts) and not list(tmp_path.glob("*.pstkit-tmp"))
    assert _sha(now[0]) != sums[0] and [_sha(p) for p in now[1: len(parts)]] == sums[1:]
    second_key = _key(out)
    assert second_key != first_key
    total: Counter[str] = Counter()
    for p in now:
        _clean(p)
        total += _message_ids(p)
    assert total == Counter(f"<m{i}@test.example>" for i in range(12))
    again = _import(store, out, "--max-size", "1MB")  # the ledger is consulted again
    assert _key(out) == second_key and sorted(tmp_path.glob("out-*.pst")) == now
    assert (again["done"], again["already"]) == (0, 12)


def test_contacts_and_events_of_two_psts_round_trip_through_an_append(
        corpus: Path, tmp_path: Path) -> None:
    """Outlook-made PSTs with contacts, a list and a recurring series -> stores -> one PST
    (the second appended: its named properties get ids after the first's) -> a store:
    every item of both, with the same stored bytes and fields."""
    from .test_write_roundtrip import catalog  # noqa: PLC0415 - the round trip's own view

    pst, back = tmp_path / "out.pst", tmp_path / "back"
    stores = [tmp_path / "s1", tmp_path / "s2"]
    for name, store in zip(("dist-list.pst", "aspose_SampleContacts.pst"), stores, strict=True):
        done = run_pstkit("--quiet", "export", str(corpus / "pst" / name), str(store))
        assert done.returncode in (0, 1), done.stderr
        _import(store, pst)
    _clean(pst)
    done = run_pstkit("--quiet", "export", str(pst), str(back))
    assert done.returncode == 0, done.stderr
    mail, other = catalog(back)
    want_mail: dict[FolderPath, list[object]] = {}
    want_other: list[tuple[object, ...]] = []
    for store in stores:
        m, o = catalog(store)
        for folder, rows in m.items():
            want_mail.setdefault(folder, []).extend(rows)
        want_other += o
    assert len(want_other) >= 9
    assert sorted(other, key=repr) == sorted(want_other, key=repr)
    assert mail == want_mail


def test_a_pstkit_file_with_a_node_nothing_carries_is_refused(tmp_path: Path) -> None:
    """A node this writer neither makes nor carries (here one added by hand beside what a
    pstkit store holds) would be dropped by an append: the append is refused instead."""
    from pstkit.converters.pst.write.messaging import PstWriter  # noqa: PLC0415

    pst = tmp_path / "odd.pst"
    with pst.open("w+b") as f:
        writer = PstWriter(f, "odd")
        writer.folder(None, "Inbox", role="inbox")
        writer.ndb.node(0x1E5, writer.ndb.block(b"kept by nobody"))
        writer.finish()
    before = _sha(pst)
    sink = PstSink(Location("pst", str(pst)), ConnectOptions())
    with pytest.raises(TargetWriteError, match="a node pstkit does not carry over"):
        sink.ensure_folder(("Neu",), None)
    sink.close()
    assert _sha(pst) == before and not list(tmp_path.glob("*.pstkit-tmp"))


def test_the_same_mail_from_a_new_store_is_not_appended_twice(tmp_path: Path) -> None:
    """The mailbox exported again into a new store (the old one lost, another machine)
    and imported into the PST the first store made: nothing is written twice, mail
    without a Message-ID included (known by the SHA-256 pstkit wrote beside it), and
    verify from the new store finds every item; new mail alone is appended."""
    md = tmp_path / "md"
    bare = [b"From: a@example.com\r\nSubject: no id %d\r\n\r\nbody %d\r\n" % (i, i)
            for i in range(3)]
    write_maildir(md, {"": [(make_message(i), "S") for i in range(4)] + [(r, "") for r in bare],
                       ".Sent": [(make_message(50), "S"), (bare[0], "S")]})
    pst, first, second = tmp_path / "out.pst", tmp_path / "first", tmp_path / "second"
    _export(md, first)
    assert _import(first, pst)["done"] == 9
    before = _sha(pst)
    _export(md, second)
    summary = _import(second, pst)
    assert summary["done"] == 0, summary
    assert sum(f.get("duplicate", 0) for f in summary["folders"].values()) == 9
    assert _sha(pst) == before  # nothing to append: the file is not rewritten
    ver = run_pstkit("--json", "--quiet", "verify", str(second), f"pst:{pst}")
    assert '"missing": 0' in ver.stdout and '"extra": 0' in ver.stdout, ver.stdout
    write_maildir(md, {"": [(make_message(i), "S") for i in range(4)] + [(r, "") for r in bare]
                       + [(b"From: a@example.com\r\nSubject: new\r\n\r\nnew\r\n", "")]})
    _export(md, second)
    assert _import(second, pst)["done"] == 1
    _clean(pst)
    assert _counts(pst) == {("Inbox",): 8, ("Sent Items",): 2}
