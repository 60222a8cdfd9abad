"""Corpus and sample mail: export -> store -> import, byte-identical, flags and names kept."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from tests.helpers import REPO, cli, cli_json, maildir_content, sha


def _roundtrip(tmp_path: Path, source: str) -> tuple[int, Path]:
    store, out = tmp_path / "store", tmp_path / "out"
    code, _, err = cli("export", source, store)
    assert code in (0, 1), err
    assert cli("check", "--read-data", store)[0] == 0
    icode, _, err = cli("import", store, f"maildir:{out}")
    assert icode == 0, err
    return code, out


def test_sample_maildir_round_trips_exactly(tmp_path: Path) -> None:
    source = REPO / "fixtures" / "sample-maildir"
    code, out = _roundtrip(tmp_path, str(source))
    assert code == 0
    assert maildir_content(out) == maildir_content(source)
    names = {"/".join(p) for p in maildir_content(out)}
    assert {
        "Projekte/v1.2 release",
        "Projekte/Überweisungen 2024",
        "Reports a/b",
        "日本語",
    } <= names


def test_corpus_maildir_round_trips(corpus: Path, tmp_path: Path) -> None:
    source = corpus / "maildir" / "staktrace_maildir"
    code, out = _roundtrip(tmp_path, f"maildir:{source}")
    assert code == 0
    assert maildir_content(out) == maildir_content(source)  # dotfiles skipped, no tmp/ tolerated


def test_corpus_submaildirs_keep_odd_names(corpus: Path, tmp_path: Path) -> None:
    code, listing = cli_json("folders", f"maildir:{corpus / 'maildir' / 'staktrace_submaildirs'}")
    assert code == 0
    assert sorted(tuple(f["path"]) for f in listing) == [
        (".Subdir3",),
        ("INBOX",),
        ("Subdir1",),
        ("Subdir2",),
    ]  # type: ignore[union-attr,index]


def test_corpus_mbox_files_arrive_byte_identical(corpus: Path, tmp_path: Path) -> None:
    code, out = _roundtrip(tmp_path, f"mbox:{corpus / 'mbox'}")
    assert code == 0
    got = maildir_content(out)
    for path in sorted((corpus / "mbox").iterdir()):
        box = mailbox.mbox(str(path))
        expected = sorted(sha(box.get_bytes(k)) for k in box.keys())  # noqa: SIM118
        folder = (path.stem if path.suffix == ".mbox" else path.name,)
        assert sorted(s for s, _ in got[folder]) == expected, path.name


def test_corpus_eml_every_file_accounted_for(corpus: Path, tmp_path: Path) -> None:
    code, out = _roundtrip(tmp_path, f"eml:{corpus / 'eml'}")
    files = sorted(p for p in (corpus / "eml").iterdir())
    _, runs = cli_json("ls", tmp_path / "store")
    skipped = {p["item"] for p in runs["problems"]}  # type: ignore[index]
    stored = {s for s, _ in maildir_content(out)[("eml",)]}
    assert code == 1 and skipped  # non-messages are reported, exit 1
    for f in files:
        data = f.read_bytes()
        if f.suffix == ".emlx":
            data = data.split(b"\n", 1)[1][: int(data.split(b"\n", 1)[0])]
        assert (sha(data) in stored) != (f.name in skipped), f.name
    assert "tika_testWINMAIL.dat" in skipped  # a raw TNEF stream is not a message


def test_mbox_store_layout_and_mbox_target(corpus: Path, tmp_path: Path) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    assert cli("export", "--format", "mbox", REPO / "fixtures" / "sample-maildir", store)[0] == 0
    assert cli("check", "--read-data", store)[0] == 0
    assert cli("import", store, f"mbox:{out}")[0] == 0
    assert cli("import", store, f"mbox:{out}")[0] == 0  # nothing twice
    box = mailbox.mbox(str(out / "Projekte.sbd" / "Überweisungen 2024"))
    source = maildir_content(REPO / "fixtures" / "sample-maildir")[
        ("Projekte", "Überweisungen 2024")
    ]
    got = sorted(sha(box.get_bytes(k)) for k in box.keys())  # noqa: SIM118 - messages, not keys
    assert got == sorted(s for s, _ in source)


def test_reimport_and_duplicate_policies(tmp_path: Path) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    cli("export", REPO / "fixtures" / "sample-maildir", store)
    assert cli("import", store, f"maildir:{out}")[0] == 0
    code, stats = cli_json("import", store, f"maildir:{out}")
    assert code == 0 and stats["stats"] == {}  # type: ignore[index]
    # A second store with the same mail: "do not import duplicates" finds them in the target.
    store2 = tmp_path / "store2"
    cli("export", REPO / "fixtures" / "sample-maildir", store2)
    code, stats = cli_json("import", store2, f"maildir:{out}")
    assert stats["stats"].get("duplicate") == 21 and "delivered" not in stats["stats"]  # type: ignore[index]
    store3 = tmp_path / "store3"
    cli("export", REPO / "fixtures" / "sample-maildir", store3)
    code, stats = cli_json("import", "--duplicates", "allow", store3, f"maildir:{out}")
    assert stats["stats"]["delivered"] == 21  # type: ignore[index]
    assert sum(len(v) for v in maildir_content(out).values()) == 42


def test_plan_and_verify(tmp_path: Path) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    cli("export", REPO / "fixtures" / "sample-maildir", store)
    code, text, _ = cli("plan", store, f"maildir:{out}")
    assert code == 0 and "21 messages to import" in text
    assert not (
        out / ".Sent"
    ).exists()  # plan writes nothing into existing folders... nor creates them
    cli("import", store, f"maildir:{out}")
    code, text, _ = cli("verify", "--all", "--csv", tmp_path / "v.csv", store, f"maildir:{out}")
    assert code == 0 and text.count("\n=") + text.startswith("=") == 21
    assert "21 matching, 0 missing, 0 extra, 0 differing" in text
    victim = next((out / ".Sent" / "cur").iterdir())
    victim.unlink()
    code, text, _ = cli("verify", store, f"maildir:{out}")
    assert code == 1 and text.count("-  Sent") == 1


@pytest.mark.parametrize("select,expect", [("Projekte", 7), ("Projekte/v1.2 release", 2)])
def test_select_one_folder(tmp_path: Path, select: str, expect: int) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    cli("export", REPO / "fixtures" / "sample-maildir", store)
    code, stats = cli_json("import", "--select", select, store, f"maildir:{out}")
    assert code == 0 and stats["stats"]["delivered"] == expect  # type: ignore[index]
