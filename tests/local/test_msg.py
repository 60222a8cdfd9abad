"""An Outlook .msg file given as a source is recognised, not called "not a message" (issue
14): alone, it is a one-line usage error; in a directory of .eml files, a reported skip."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli_json, make_message

#: the first sector of an OLE2 compound file (MS-CFB 2.2): magic, CLSID, minor version,
#: major version 3, byte order FFFE, sector shift 9 (512-byte sectors)
CFB_HEAD = (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) + bytes.fromhex("3e000300feff0900")
            + bytes(512 - 32))


def test_a_msg_file_as_the_source_says_what_it_is(tmp_path: Path) -> None:
    msg = tmp_path / "note.msg"
    msg.write_bytes(CFB_HEAD)
    code, out = cli_json("export", str(msg), str(tmp_path / "store"))
    assert code == 2
    assert isinstance(out, dict)
    assert "an Outlook .msg file: not supported as a source yet" in str(out)


def test_a_msg_file_among_eml_files_is_a_skip_that_says_what_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "mails"
    folder.mkdir()
    (folder / "a.eml").write_bytes(make_message(1))
    (folder / "b.msg").write_bytes(CFB_HEAD)
    code, out = cli_json("export", f"eml:{folder}", str(tmp_path / "store"))
    assert code == 1
    assert isinstance(out, dict)
    assert [p["reason"] for p in out["problems"]] == [
        "an Outlook .msg file: not supported as a source yet"]
    assert out["stats"]["stored"] == 1
