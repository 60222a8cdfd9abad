"""The house rule, checked: one room per system under converters/, rooms never import each other.

A room (converters/<room>/) may import pstkit core, its own room and the neutral `pim` room;
`pim` imports no room; pstkit core (everything under pstkit/ but cli/) imports neither a room
nor typer/tqdm. The checker reads import statements with `ast` (nothing is imported).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = "pstkit.converters"
NEUTRAL = "pim"
TERMINAL = ("typer", "tqdm")


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in `path`, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
            out.append((node.lineno, base))
    return out


def _room(module: str) -> str | None:
    if module.startswith(PKG + "."):
        return module[len(PKG) + 1 :].split(".", maxsplit=1)[0]
    return None


def violations(converters: Path, core: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(converters.rglob("*.py")):
        rel = path.relative_to(converters)
        if len(rel.parts) == 1:
            continue  # the registry names every room on purpose (as strings)
        room = rel.parts[0]
        package = ".".join([PKG, *rel.parts[:-1]])
        for line, module in _imports(path, package):
            other = _room(module)
            if module == "converters" or module.startswith("converters."):
                found.append(f"{rel}:{line}: imports {module} (use pstkit.converters)")
            elif other not in (None, room) and (other != NEUTRAL or room == NEUTRAL):
                found.append(f"{rel}:{line}: room {room} imports room {other} ({module})")
    for path in sorted(core.rglob("*.py")):
        rel = path.relative_to(core)
        if rel.parts[0] in ("cli", "converters"):
            continue
        for line, module in _imports(path, "pstkit"):
            if _room(module) is not None or module == PKG or module.split(".")[0] in TERMINAL:
                found.append(f"pstkit/{rel}:{line}: core imports {module}")
    return found


def test_the_tree_keeps_the_rule() -> None:
    assert violations(REPO / "converters", REPO / "pstkit") == []


def test_every_room_says_what_it_holds() -> None:
    rooms = [p for p in (REPO / "converters").iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert {p.name for p in rooms} >= {"local", "imap", "pst", "ews", "graph", NEUTRAL}
    for room in rooms:
        doc = ast.get_docstring(ast.parse((room / "__init__.py").read_text(encoding="utf-8")))
        assert doc and 1 <= len(doc.strip().splitlines()) <= 3, room.name


@pytest.mark.parametrize(
    ("where", "line", "expect"),
    [
        ("converters/ews/sink.py", "from pstkit.converters.pst import tz", "ews imports room pst"),
        ("converters/graph/pim/event.py", "from ...imap import names", "graph imports room imap"),
        ("converters/pim/tzrules.py", "import pstkit.converters.pst.tz", "pim imports room pst"),
        ("converters/local/mbox.py", "from converters.imap import conn", "imports converters.imap"),
        ("pstkit/store.py", "from pstkit.converters.local import maildir", "core imports"),
        ("pstkit/pipeline.py", "import tqdm", "core imports tqdm"),
    ],
)
def test_a_planted_violation_is_found(tmp_path: Path, where: str, line: str, expect: str) -> None:
    for name in ("converters", "pstkit"):
        shutil.copytree(REPO / name, tmp_path / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))  # fmt: skip
    assert violations(tmp_path / "converters", tmp_path / "pstkit") == []
    planted = tmp_path / where
    planted.write_text(planted.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    found = violations(tmp_path / "converters", tmp_path / "pstkit")
    assert len(found) >= 1 and all(expect in f for f in found), found


def test_the_neutral_room_may_be_used_by_any_room(tmp_path: Path) -> None:
    shutil.copytree(REPO / "converters", tmp_path / "converters",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))  # fmt: skip
    (tmp_path / "pstkit").mkdir()
    ews = tmp_path / "converters/ews/sink.py"
    neutral = "\nfrom pstkit.converters.pim import tzrules\n"
    ews.write_text(ews.read_text(encoding="utf-8") + neutral, encoding="utf-8")
    assert violations(tmp_path / "converters", tmp_path / "pstkit") == []
