"""A run killed in the middle of an mbox append: the next run leaves no message cut short.

The kill lands at an exact byte: the child process gets RLIMIT_FSIZE just past the start of
a message and SIGXFSZ's default action (the kernel ends the process when a write crosses the
limit), so the file holds a message cut in two, as after `kill -9` at the worst moment.
"""

from __future__ import annotations

import mailbox
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from pstkit.converters.local.mbox import MboxSink
from pstkit.location import Location
from pstkit.model import Delivered, StoredMessage
from pstkit.options import ConnectOptions
from tests.helpers import REPO, cli, make_message, sha, write_maildir

FIRST, SECOND = range(0, 5), range(5, 9)

CHILD = """
import resource, signal, sys
from pathlib import Path
from tests.local.test_mbox_append import FIRST, SECOND, batch, sink
root, cut_into = Path(sys.argv[1]), int(sys.argv[2])
box = sink(root)
box.ensure_folder(("INBOX",), None)
box.put_batch(("INBOX",), batch(FIRST))
size = (root / "INBOX").stat().st_size
print(size, flush=True)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + cut_into, resource.RLIM_INFINITY))
box.put_batch(("INBOX",), batch(SECOND))
"""


def sink(root: Path) -> MboxSink:
    return MboxSink(Location("mbox", str(root)), ConnectOptions())


def batch(ids: range) -> list[tuple[StoredMessage, bytes]]:
    out = []
    for i in ids:
        raw = make_message(i, size=3000)
        msg = StoredMessage(
            id=i + 1, folder=("INBOX",), sha256=sha(raw), size=len(raw), flags=frozenset(),
            keywords=frozenset(), received=datetime(2024, 3, 4, 10, i, tzinfo=UTC),
            message_id=f"<m{i}@test.example>", subject="", source_id=str(i), source_epoch="",
            store_id="t",
        )  # fmt: skip
        out.append((msg, raw))
    return out


def _in_box(path: Path) -> list[str]:
    box = mailbox.mbox(str(path))
    return [sha(box.get_bytes(k)) for k in box.keys()]  # noqa: SIM118 - keys, not messages


def test_a_message_cut_by_a_kill_is_cut_away_before_the_batch_is_sent_again(
    tmp_path: Path,
) -> None:
    cut_into = len(batch(SECOND)[0][1]) + 1000  # the second message, a third of the way in
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(cut_into)],
                           cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == -signal.SIGXFSZ, child.stderr
    whole = int(child.stdout)
    assert (tmp_path / "INBOX").stat().st_size == whole + cut_into  # the torn state is real

    again = sink(tmp_path)  # what the next run opens: opening alone cuts nothing (verify)
    assert (tmp_path / "INBOX").stat().st_size == whole + cut_into
    again.ensure_folder(("INBOX",), None)  # an import begins the folder
    assert (tmp_path / "INBOX").stat().st_size == whole
    results = again.put_batch(("INBOX",), batch(SECOND))
    assert all(isinstance(r, Delivered) for r in results)
    assert _in_box(tmp_path / "INBOX") == [sha(raw) for _, raw in batch(FIRST) + batch(SECOND)]
    assert [p.name for p in tmp_path.iterdir()] == ["INBOX"]  # no mark left behind


def test_an_append_that_finished_is_never_cut(tmp_path: Path) -> None:
    first = sink(tmp_path)
    first.ensure_folder(("INBOX",), None)
    first.put_batch(("INBOX",), batch(FIRST))
    first.put_batch(("INBOX",), batch(SECOND))
    size = (tmp_path / "INBOX").stat().st_size
    sink(tmp_path)
    assert (tmp_path / "INBOX").stat().st_size == size
    assert len(_in_box(tmp_path / "INBOX")) == len(FIRST) + len(SECOND)


def test_an_existing_mbox_file_as_target_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    """`mbox:` names a folder of mbox files; pointed at one mbox file it says so in one line
    (mkdir said only "File exists") and does not touch the file."""
    md, store, target = tmp_path / "md", tmp_path / "store", tmp_path / "Inbox"
    write_maildir(md, {"": [(make_message(1), "S")]})
    assert cli("export", f"maildir:{md}", store)[0] == 0
    target.write_bytes(b"From a@b Mon Mar  4 09:30:00 2024\nSubject: x\n\nbody\n")
    before = target.read_bytes()
    code, _, err = cli("import", store, f"mbox:{target}")
    assert code != 0 and "Traceback" not in err
    first = err.strip().splitlines()[0]
    assert "is a file" in first and "folder" in first
    assert target.read_bytes() == before
