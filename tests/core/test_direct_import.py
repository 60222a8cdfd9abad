"""`pstkit import FILE.pst TARGET`: straight from a PST, resumable like any import."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli, cli_json, maildir_content

pytest.importorskip("pypff")


def test_pst_straight_into_a_maildir(corpus: Path, tmp_path: Path) -> None:
    pst = corpus / "pst" / "aspose_source.pst"
    work, out = tmp_path / "work", tmp_path / "out"
    code, res = cli_json("import", "--work-store", str(work), str(pst), f"maildir:{out}")
    assert code in (0, 1), res
    got = maildir_content(out)
    # Inbox (8 mails) and Sent Items (6) of the README's folder table arrive.
    inbox = next(v for k, v in got.items() if k[-1] == "Inbox" or k == ("INBOX",))
    sent = next(v for k, v in got.items() if k[-1] == "Sent Items")
    assert len(inbox) >= 8 and len(sent) == 6
    # A second run stages nothing new and delivers nothing twice.
    code, res = cli_json("import", "--work-store", str(work), str(pst), f"maildir:{out}")
    assert res["stats"].get("delivered", 0) == 0  # type: ignore[index]
    assert maildir_content(out) == got
    assert cli("check", "--read-data", work)[0] == 0
