"""What Microsoft's PST import needs next to the files: the Purview mapping CSV and the
`New-MailboxImportRequest` line for Exchange on premises. Pure functions, no I/O.

The mapping file follows "Use network upload to import your organization's PST files to
Microsoft 365", step 4 (learn.microsoft.com/purview/use-network-upload-to-import-pst-files):
the header below, exactly; `Workload` is `Exchange`; `FilePath` the folder below the SAS
URL's container the files were uploaded to (blank: the container itself); `Name` the PST's
file name (case-sensitive); `IsArchive` FALSE for the primary mailbox; `TargetRootFolder` `/`
imports into the top of the mailbox's folder structure and merges into existing folders
(Inbox into Inbox): Outlook's "import items into the same folder"; the SharePoint columns stay
empty for PST imports; at most 500 rows per mapping file.

`New-MailboxImportRequest` (Exchange Server PowerShell) reads the PST from a UNC share;
without `-TargetRootFolder` "the command imports folders to the top of the folder structure
in the target mailbox or archive; if the folder already exists, the contents are merged".
Each file is its own request and the requests of one mailbox need distinct `-Name`s.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

HEADER = ("Workload,FilePath,Name,Mailbox,IsArchive,TargetRootFolder,ContentCodePage,"
          "SPFileContainer,SPManifestContainer,SPSiteUrl")
MAX_ROWS = 500  # per mapping file (Microsoft's limit)
#: Microsoft's PST import service does not import items larger than this; the docs say
#: "150 MB": the smaller reading (decimal) warns a little early rather than too late
IMPORT_SERVICE_ITEM_LIMIT = 150_000_000

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`20GB`, `500MB`, `1.5G`, `20GiB`, `1048576`: bytes. Suffixes without `i` are decimal
    (20GB = 20,000,000,000 as Microsoft's recommendation reads), with `i` binary."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (e.g. 20GB, 500MB, 2GiB)")
    power = "kmgt".find(m.group(2).lower()) + 1 if m.group(2) else 0
    return int(float(m.group(1)) * (1024 if m.group(3) else 1000) ** power)


def row(name: str, mailbox: str, file_path: str = "", archive: bool = False,
        root: str = "/") -> list[str]:
    """One mapping row: a PST file into a mailbox."""
    return ["Exchange", file_path, name, mailbox, "TRUE" if archive else "FALSE", root,
            "", "", "", ""]


def merge_rows(old: Sequence[Sequence[str]], new: Sequence[Sequence[str]]
               ) -> list[list[str]]:
    """The rows of an earlier mapping file with this run's added: a row for the same file
    name and folder path is replaced (a re-run writes the files again), the rest kept in
    order, so one mapping file can collect a whole batch of mailboxes."""
    names = {(r[1], r[2]) for r in new}
    return [list(r) for r in old if (r[1], r[2]) not in names] + [list(r) for r in new]


def render(rows: Sequence[Sequence[str]]) -> list[str]:
    """The mapping file(s) as text: the header and up to 500 rows each."""
    chunks = [rows[i:i + MAX_ROWS] for i in range(0, len(rows), MAX_ROWS)] or [[]]
    out = []
    for chunk in chunks:
        buf = io.StringIO()
        buf.write(HEADER + "\r\n")
        csv.writer(buf, lineterminator="\r\n").writerows(chunk)
        out.append(buf.getvalue())
    return out


def parse(text: str) -> list[list[str]]:
    """The rows of a mapping file pstkit (or a person) wrote; the header must be Microsoft's."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise ValueError("not a PST import mapping file (its first line is not Microsoft's "
                         "header)")
    return [r for r in csv.reader(lines[1:]) if r]


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def import_request(mailbox: str, share: str, name: str, count: int) -> str:
    """The Exchange Management Shell line that imports one file into the same folders."""
    unc = share.rstrip("\\") + "\\" + name
    label = f"pstkit {name}" if count > 1 else "pstkit"
    return (f"New-MailboxImportRequest -Mailbox {_ps_quote(mailbox)} -FilePath "
            f"{_ps_quote(unc)} -Name {_ps_quote(label)}")
