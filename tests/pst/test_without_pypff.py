"""PST reading without libpff (issue 14): `pip install pstkit` with no extras reads every
corpus file the node reader can read; pypff is only the fallback, and what would need it
is reported with the reason. The CLI runs in a child process where `import pypff` fails
(a stand-in module on PYTHONPATH raises ImportError, as when the package is missing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import corpus_root
from tests.helpers import run_pstkit
from tests.pst.test_damage import flip_in_attachment

#: files the node reader reads (the other one has a damaged header: an error either way)
FILES = sorted(p.name for p in (corpus_root() / "pst").glob("*.[po]st")
               if p.name != "aspose_AddingBulkMessagesWithImprovedPerformance.pst")


@pytest.fixture(scope="module")
def no_pypff(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    hide = tmp_path_factory.mktemp("hide")
    (hide / "pypff.py").write_text('raise ImportError("No module named \'pypff\'")\n')
    path = os.pathsep.join(p for p in (str(hide), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def _stored(args: list[str], env: dict[str, str] | None) -> tuple[int, dict[str, object]]:
    proc = run_pstkit("--json", *args, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}


#: exports every file given into its own store; prints {file: [exit code, sorted digests]}
EXPORT_ALL = """
import json, sys
from pathlib import Path
from pstkit.converters import open_source
from pstkit.location import parse_location
from pstkit.options import ConnectOptions
from pstkit.pipeline import export
from pstkit.store import Store
out = {}
for i, name in enumerate(sys.argv[2:]):
    src = open_source(parse_location(name), ConnectOptions())
    with Store.create(Path(sys.argv[1]) / str(i)) as store:
        result = export(src, store)
        out[Path(name).name] = [result.exit_code, sorted(r.msg.sha256 for r in store.rows())]
    src.close()
print(json.dumps(out))
"""


def _export_all(files: list[Path], work: Path, env: dict[str, str] | None) -> object:
    proc = subprocess.run([sys.executable, "-c", EXPORT_ALL, str(work), *map(str, files)],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_the_stand_in_hides_pypff(no_pypff: dict[str, str]) -> None:
    probe = subprocess.run([sys.executable, "-c", "import pypff"], env={**os.environ, **no_pypff},
                           capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "No module named 'pypff'" in probe.stderr


def test_every_file_reads_the_same_without_pypff(
    corpus: Path, tmp_path: Path, no_pypff: dict[str, str]
) -> None:
    files = [corpus / "pst" / name for name in FILES]
    without = _export_all(files, tmp_path / "without", no_pypff)
    assert without == _export_all(files, tmp_path / "with", None)
    code, listed = _stored(["folders", str(files[0])], no_pypff)
    assert code == 0 and listed


def test_a_damaged_item_without_pypff_says_why(tmp_path: Path, no_pypff: dict[str, str],
                                                corpus: Path) -> None:
    """The node reader cannot read one attachment (a CRC-damaged block); libpff would be
    asked, but is missing: the item is kept with what can be read and the reason."""
    bad = flip_in_attachment(corpus, tmp_path)
    code, out = _stored(["export", str(bad), str(tmp_path / "store")], no_pypff)
    assert code == 1
    reasons = [p["reason"] for p in out["problems"]]  # type: ignore[index]
    assert len(reasons) == 1 and reasons[0].startswith("stored, but attachment 1 unreadable: "
                                                       "block 0x"), reasons
