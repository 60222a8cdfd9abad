"""The Purview mapping file on disk: checked before any PST is written (a wrong header or a
missing mailbox is a usage error at the start, not after hours of writing), rows merged
into an earlier file so that one file can collect a batch of mailboxes, written under a
work name and renamed. I/O around the pure purview.py.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from pstkit.errors import TargetWriteError, UsageError
from pstkit.options import ConnectOptions

from .purview import merge_rows, parse, render, row


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class PurviewFile:
    path: Path
    mailbox: str
    file_path: str = ""  # folder below the upload container ("" = the container itself)
    archive: bool = False
    root: str = "/"

    @classmethod
    def from_options(cls, options: ConnectOptions) -> PurviewFile | None:
        text = options.extra.get("purview-csv")
        if not text:
            return None
        if not options.mailbox:
            raise UsageError("--purview-csv needs --mailbox: the mailbox the PST files go "
                             "into (e.g. --mailbox ann@contoso.com)")
        made = cls(Path(text), options.mailbox, options.extra.get("purview-path", ""),
                   _truthy(options.extra.get("archive", "")),
                   options.extra.get("target-root", "/"))
        made.read()  # a foreign or damaged file is refused now, before any PST is written
        return made

    def files(self) -> list[Path]:
        """The mapping file and its continuations (`mapping-002.csv`…, 500 rows each)."""
        found = [self.path] if self.path.exists() else []
        n = 2
        while (nxt := self._part(n)).exists():
            found.append(nxt)
            n += 1
        return found

    def _part(self, n: int) -> Path:
        return self.path if n == 1 else self.path.with_name(
            f"{self.path.stem}-{n:03d}{self.path.suffix}")

    def read(self) -> list[list[str]]:
        rows: list[list[str]] = []
        for p in self.files():
            try:
                rows += parse(p.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as e:
                raise UsageError(f"{p}: {e}") from None
        return rows

    def add(self, names: list[str]) -> None:
        """Add rows for these files; under a lock, since the jobs of a batch run at once and
        all write one mapping file. The lock is taken on the file's folder, not on a lock
        file beside it: a `mapping.csv.lock` left there would be uploaded with the PSTs or
        puzzle whoever reviews the folder, and removing a lock file after use races with
        the next job opening it."""
        new = [row(n, self.mailbox, self.file_path, self.archive, self.root) for n in names]
        try:
            held = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fcntl.flock(held, fcntl.LOCK_EX)
                self._write(render(merge_rows(self.read(), new)))
            finally:
                os.close(held)  # closing the last descriptor releases the lock
        except OSError as e:
            raise TargetWriteError(self.path, e.strerror or str(e)) from e

    def _write(self, texts: list[str]) -> None:
        try:
            for n, text in enumerate(texts, 1):
                target = self._part(n)
                work = target.with_name(target.name + ".pstkit-tmp")
                with work.open("w", encoding="utf-8", newline="") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(work, target)
        except OSError as e:
            raise TargetWriteError(self.path, e.strerror or str(e)) from e
