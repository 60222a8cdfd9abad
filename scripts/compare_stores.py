"""Are two stores the same? For checking that a faster writer still writes the same store.

Compares the catalog's message rows (every column but the row id and the run id),
its folder rows (but the id), and every file under mail/ by name and SHA-256.
Exit 0 if all three match, 1 (with the first difference) if not.

    python scripts/compare_stores.py STORE_A STORE_B
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

MESSAGE_COLUMNS = (
    "f.dirname, m.file, m.offset, m.length, m.size, m.sha256, m.flags, m.keywords, m.received,"
    " m.message_id, m.subject, m.kind, m.source_key, m.source_epoch, m.source_id"
)
Rows = list[tuple[object, ...]]


def catalog_rows(store: Path) -> tuple[Rows, Rows]:
    db = sqlite3.connect(f"file:{store / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        messages = sorted(db.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN folders f ON f.id=m.folder_id"
        ), key=repr)  # fmt: skip
        folders = sorted(db.execute(
            "SELECT path, role, source_name, container_class, dirname, selectable FROM folders"
        ), key=repr)  # fmt: skip
    finally:
        db.close()
    return messages, folders


def file_digests(store: Path) -> dict[str, str]:
    root = store / "mail"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def first_difference(a: Rows, b: Rows) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"  A: {x}\n  B: {y}"
    return f"  one has {abs(len(a) - len(b))} more rows"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    (ma, fa), (mb, fb) = catalog_rows(a), catalog_rows(b)
    xa, xb = file_digests(a), file_digests(b)
    same = True
    for label, ra, rb in (("message rows", ma, mb), ("folder rows", fa, fb)):
        ok = ra == rb
        same &= ok
        print(f"{label}: {len(ra)} / {len(rb)} {'identical' if ok else 'DIFFER'}")
        if not ok:
            print(first_difference(ra, rb))
    ok = xa == xb
    same &= ok
    print(f"files: {len(xa)} / {len(xb)} {'identical (names and SHA-256)' if ok else 'DIFFER'}")
    if not ok:
        for name in sorted(set(xa) ^ set(xb))[:3] or [n for n in sorted(xa) if xa[n] != xb[n]][:3]:
            print(f"  {name}: {xa.get(name, 'missing')} / {xb.get(name, 'missing')}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
