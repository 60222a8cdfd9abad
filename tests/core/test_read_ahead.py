"""Import reads the next batch while one is delivered (importing._read_ahead) and shows
it to sinks that prepare items (protocols.LookAhead): every message still arrives once
with its exact bytes, a damaged store file is still a reported problem, and what a sink
is offered it was shown before, as the very bytes read."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from pstkit import importing, pipeline
from pstkit.converters import open_source
from pstkit.converters.local.maildir import MaildirSink
from pstkit.location import parse_location
from pstkit.mapping import path_text
from pstkit.model import Delivered, FolderPath, StoredMessage
from pstkit.options import ConnectOptions, MappingOptions
from pstkit.protocols import BatchLimit, Failed, LookAhead
from pstkit.runs import NullProgress, RunResult
from pstkit.store import Store
from tests.helpers import maildir_content, make_message, write_maildir

FOLDERS = {
    "": [(make_message(i, size=i * 300), "S" if i % 3 else "") for i in range(41)],
    ".Sent": [(make_message(100 + i), "S") for i in range(9)],
    ".Archive.2020": [(make_message(200 + i, size=5000), "RS") for i in range(23)],
}


class Recording(MaildirSink):
    """The Maildir target, small batches, and a log of what it was shown and offered."""

    def __init__(self, root: Path) -> None:
        super().__init__(parse_location(f"maildir:{root}"), ConnectOptions())
        self.batch_limit = BatchLimit(max_items=7, max_bytes=1 << 20)
        self.events: list[tuple[str, list[tuple[int, bytes]]]] = []

    def upcoming(self, batch: Sequence[tuple[StoredMessage, bytes]]) -> None:
        self.events.append(("shown", [(m.id, raw) for m, raw in batch]))

    def put_batch(self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]]
                  ) -> list[Delivered | Failed]:  # fmt: skip
        self.events.append(("offered", [(m.id, raw) for m, raw in batch]))
        return super().put_batch(folder, batch)


def _store(tmp_path: Path) -> tuple[Path, Store]:
    src = tmp_path / "src"
    write_maildir(src, FOLDERS)
    store = Store.create(tmp_path / "store")
    source = open_source(parse_location(f"maildir:{src}"), ConnectOptions())
    pipeline.export(source, store)
    source.close()
    return src, store


@pytest.mark.parametrize("ahead", [importing.READ_AHEAD_BYTES, 2500])
def test_what_is_offered_was_read_once_and_shown_first_up_to_the_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ahead: int) -> None:  # fmt: skip
    """Every message arrives once, exactly; of each batch the sink is shown its first
    messages up to READ_AHEAD_BYTES (at least one) before it is offered the batch, as
    the very bytes read (no second read); the rest only when offered."""
    monkeypatch.setattr(importing, "READ_AHEAD_BYTES", ahead)
    src, store = _store(tmp_path)
    sink = Recording(tmp_path / "out")
    assert isinstance(sink, LookAhead)
    result = importing.import_(store, sink, MappingOptions())
    sink.close()
    assert not result.problems
    assert maildir_content(tmp_path / "out") == maildir_content(src)  # each once, exact
    shown: dict[int, bytes] = {}
    batches = 0
    for what, items in sink.events:
        if what == "shown":
            assert items and (len(items) == 1 or sum(len(r) for _, r in items) <= ahead)
            shown.update(items)
            continue
        batches += 1
        seen = [shown.get(mid) is raw for mid, raw in items]
        assert seen[0] and seen == sorted(seen, reverse=True)  # a first part was shown
    total = sum(len(v) for v in FOLDERS.values())
    assert batches >= total // 7 and sum(len(i) for w, i in sink.events if w == "offered") == total
    assert (len(shown) == total) == (ahead > 10_000)  # with the small bound some were not


def test_a_damaged_store_file_is_reported_and_not_shown(tmp_path: Path) -> None:
    src, store = _store(tmp_path)
    victim = next(r for r in store.rows() if r.msg.subject.startswith("Message 205"))
    store.message_path(victim).write_bytes(b"Subject: not what was stored\r\n\r\n")
    sink = Recording(tmp_path / "out")
    result = importing.import_(store, sink, MappingOptions())
    sink.close()
    assert [p.reason.startswith("store file damaged") for p in result.problems] == [True]
    assert result.problems[0].item == str(victim.msg.id)
    assert all(mid != victim.msg.id for _, items in sink.events for mid, _ in items)
    want = maildir_content(src)
    got = maildir_content(tmp_path / "out")
    assert sum(map(len, got.values())) == sum(map(len, want.values())) - 1


class Waiting(Recording):
    """Holds the last batch of each folder (but the last folder) until a message of a
    folder not yet offered has been shown, for at most WAIT_S; notes whether it was."""

    WAIT_S = 10.0

    def __init__(self, root: Path, last_ids: set[int], folders: set[FolderPath]) -> None:
        super().__init__(root)
        self.last_ids, self.all_folders = last_ids, folders
        self.shown_folders: set[FolderPath] = set()
        self.offered_folders: set[FolderPath] = set()
        self.cond = threading.Condition()
        self.ahead: list[bool] = []

    def upcoming(self, batch: Sequence[tuple[StoredMessage, bytes]]) -> None:
        super().upcoming(batch)
        with self.cond:
            self.shown_folders.update(m.folder for m, _ in batch)
            self.cond.notify_all()

    def put_batch(self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]]
                  ) -> list[Delivered | Failed]:  # fmt: skip
        self.offered_folders.update(m.folder for m, _ in batch)
        later = self.all_folders - self.offered_folders
        if later and any(m.id in self.last_ids for m, _ in batch):
            with self.cond:
                self.ahead.append(self.cond.wait_for(
                    lambda: bool(self.shown_folders & later), timeout=self.WAIT_S))
        return super().put_batch(folder, batch)


def test_the_next_folders_first_batch_is_read_while_the_last_one_is_delivered(
        tmp_path: Path) -> None:  # fmt: skip
    """Across folders too: while a folder's last batch is delivered, the next folder's
    first messages are read and shown (folder by folder, each folder's first batch was
    read with nothing else running). Every message still arrives once, exactly."""
    src, store = _store(tmp_path)
    last: dict[FolderPath, int] = {}
    for row in store.rows():
        last[row.msg.folder] = row.msg.id  # the catalog's order is the order sent
    sink = Waiting(tmp_path / "out", set(last.values()), set(last))
    result = importing.import_(store, sink, MappingOptions())
    sink.close()
    assert not result.problems
    assert maildir_content(tmp_path / "out") == maildir_content(src)
    assert sink.ahead == [True] * (len(FOLDERS) - 1)


class Telling(NullProgress):
    """A progress that notes which folder it was told about, into the sink's log."""

    def __init__(self, log: list[tuple[str, list[tuple[int, bytes]]]]) -> None:
        self.log = log
        self.told: list[str] = []

    def run_started(self, run_id: int, kind: str, peer: str, store_root: Path) -> None:
        pass

    def run_finished(self, result: RunResult, status: str) -> None:
        pass

    def folder(self, name: str) -> None:
        self.told.append(name)
        self.log.append(("told", []))


def test_every_folder_is_told_once_before_its_batches_also_when_it_has_none(
        tmp_path: Path) -> None:  # fmt: skip
    """The progress (the CLI's bar and -v log) hears of each planned folder once, in the
    plan's order, before the folder's first batch is offered; on a re-run with nothing
    left to deliver it still hears of every folder."""
    _src, store = _store(tmp_path)
    for rerun in (False, True):
        sink = Recording(tmp_path / "out")
        progress = Telling(sink.events)
        result = importing.import_(store, sink, MappingOptions(), progress=progress)
        sink.close()
        assert not result.problems
        planned = [path_text(e.target) for e in importing.make_plan(store, sink, MappingOptions())]
        assert progress.told == planned and "Archive" in planned  # (a parent without mail)
        offered = [what for what, _ in sink.events if what != "shown"]
        assert offered.count("offered") == (0 if rerun else len(offered) - len(planned))
        if not rerun:  # between two folders' tellings, the batches of the first one
            folder_of = {r.msg.id: path_text(r.msg.folder) for r in store.rows()}
            told = -1
            for what, items in sink.events:
                if what == "told":
                    told += 1
                elif what == "offered":
                    assert folder_of[items[0][0]] == progress.told[told]
