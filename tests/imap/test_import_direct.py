"""`pstkit import imaps://… pst:OUT.pst`: a server straight into a file target, through
a resumable work store (issue 17: "and straight from any source"). Re-runs bring only
what is new; server to server stays two commands."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pstkit.store import Store
from tests.helpers import cli, make_message
from tests.servers.dovecot import Account, Dovecot, unique_user
from tests.servers.mail_helpers import password_file


@pytest.fixture()
def user(dovecot: Dovecot) -> Account:
    return dovecot.add_user(unique_user(), "s3cret pass")


def _url(dovecot: Dovecot, user: Account) -> str:
    return f"imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}"


def _opts(dovecot: Dovecot, user: Account, tmp: Path) -> list[str]:
    return ["--password-file", str(password_file(tmp, user)), "--ca-file", str(dovecot.ca_file)]


def _subjects(pst: Path, tmp: Path, name: str) -> Counter[tuple[str, str]]:
    """(folder, subject) of every message in the PST, read back by pstkit's reader."""
    store = tmp / name
    code, out, err = cli("export", f"pst:{pst}", str(store))
    assert code == 0, out + err
    got: Counter[tuple[str, str]] = Counter()
    with Store.open(store) as st:
        for folder in st.folders():
            for row in st.catalog.messages(folder.id):
                got[("/".join(folder.info.path), row.msg.subject)] += 1
    return got


def test_server_straight_into_a_pst_then_only_what_is_new(
    dovecot: Dovecot, user: Account, tmp_path: Path
) -> None:
    for i in range(5):
        dovecot.append(user, "INBOX", make_message(i, f"in {i}"))
    for i in range(3):
        dovecot.append(user, "Projekte/2024", make_message(100 + i, f"proj {i}"))
    pst, work = tmp_path / "out.pst", tmp_path / "work"
    args = ["import", _url(dovecot, user), f"pst:{pst}", "--work-store", str(work),
            *_opts(dovecot, user, tmp_path)]
    code, out, err = cli(*args)
    assert code == 0, out + err
    first = _subjects(pst, tmp_path, "back1")
    assert sum(first.values()) == 8
    want = {("Inbox", f"in {i}") for i in range(5)} | {("Projekte/2024", f"proj {i}")
                                                       for i in range(3)}
    assert set(first) == want
    assert all(n == 1 for n in first.values())

    dovecot.append(user, "INBOX", make_message(7, "late"))
    code, out, err = cli(*args)  # the work store resumes: one new message, none twice
    assert code == 0, out + err
    second = _subjects(pst, tmp_path, "back2")
    assert sum(second.values()) == 9 and all(n == 1 for n in second.values())
    assert second - first == Counter({next(k for k in second if k[1] == "late"): 1})


def test_server_to_server_is_refused_in_one_line(
    dovecot: Dovecot, user: Account, tmp_path: Path
) -> None:
    code, _out, err = cli("import", _url(dovecot, user), _url(dovecot, user),
                         *_opts(dovecot, user, tmp_path))  # fmt: skip
    assert code == 2
    assert "export to a store first" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.pst"))
