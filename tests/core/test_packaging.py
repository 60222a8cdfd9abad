"""The wheel as a user gets it: no top-level `converters`, and it runs from a fresh venv.

Built with `pip wheel --no-deps .`, installed with its `pst` and `imap` extras into a new venv,
and run from a folder outside the repo, so nothing of the checkout can stand in for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.servers.dovecot import Dovecot, unique_user
from tests.servers.mail_helpers import password_file

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path, timeout: int = 600) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, REPO, cwd=out)
    (found,) = out.glob("pstkit-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", root / "v", cwd=root)
    _run(root / "v/bin/python", "-m", "pip", "install", "-q", f"{wheel}[pst,imap]", cwd=root)
    return root / "v"


def test_the_wheel_installs_converters_under_pstkit_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "converters" not in tops
    assert {t for t in tops if not t.endswith(".dist-info")} == {"pstkit"}
    for part in ("local/maildir.py", "imap/sink.py", "pst/source.py", "pst/write/sink.py",
                 "ews/sink.py",
                 "graph/sink.py", "pim/tzrules.py"):  # fmt: skip
        assert f"pstkit/converters/{part}" in names, part
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_installed_wheel_runs(venv: Path, tmp_path: Path, corpus: Path,
                                  dovecot: Dovecot) -> None:  # fmt: skip
    pstkit = venv / "bin/pstkit"
    where = _run(venv / "bin/python", "-c", "import pstkit.converters as c; print(c.__file__)",
                 cwd=tmp_path)  # fmt: skip
    assert where.startswith(str(venv)), where
    version = _run(pstkit, "--version", cwd=tmp_path)
    assert version.startswith("pstkit ") and "python " in version
    assert "IMAP (imapclient): yes" in version
    # setup.py builds the C twins wherever a compiler is (scripts/setup.sh installs one).
    twins = "yes" if shutil.which("cc") else "no"
    assert f"C twins of the PST reader: {twins}" in version

    listing = _run(pstkit, "folders", f"pst:{corpus / 'pst' / 'testPST.pst'}", cwd=tmp_path)
    assert "[trash]" in listing and "7  " in listing, listing

    user = dovecot.add_user(unique_user("wheel"), "pw")
    dovecot.append(user, "INBOX", b"Subject: from the wheel\r\n\r\nbody\r\n", ())
    store = tmp_path / "store"
    _run(pstkit, "export", f"imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}", store,
         "--password-file", password_file(tmp_path, user), "--ca-file", dovecot.ca_file,
         cwd=tmp_path)  # fmt: skip
    assert "1" in _run(pstkit, "--json", "ls", store, cwd=tmp_path)
    assert b"from the wheel" in b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file()
                                         and p.suffix not in (".sqlite", ".json"))  # fmt: skip


def test_the_sdist_holds_what_install_needs_and_no_tests(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "build", "--sdist", "-o", tmp_path, REPO, cwd=tmp_path)
    (sdist,) = tmp_path.glob("pstkit-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "pyproject.toml", "setup.py", "pstkit/converters/pst/_pstspeed.c",
            "pstkit/converters/pst/_pstspeed.h", "pstkit/converters/imap/sink.py"} <= names
    assert not {n for n in names if n.split("/")[0] in ("tests", "fixtures", "scripts",
                                                        "converters")}  # fmt: skip
