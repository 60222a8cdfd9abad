"""`verify` against Maildir and mbox targets: an identical target is all `=` (exit 0), and
a damaged one gives a clear error, never an internal error (exit 70)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli, make_message, write_maildir


def _store(tmp_path: Path, messages: list[bytes]) -> Path:
    write_maildir(tmp_path / "src", {"": [(raw, "S") for raw in messages]})
    store = tmp_path / "store"
    code, _out, err = cli("--quiet", "export", f"maildir:{tmp_path / 'src'}", str(store))
    assert code == 0, err
    return store


def test_maildir_target_with_an_unreadable_entry_is_a_clear_error(tmp_path: Path) -> None:
    store = _store(tmp_path, [make_message(1), make_message(2)])
    out_dir = tmp_path / "md"
    code, _out, err = cli("--quiet", "import", str(store), f"maildir:{out_dir}")
    assert code == 0, err
    for bad in ("dir", "link"):  # a directory, a dangling symlink where a message file goes
        entry = out_dir / "cur" / f"{bad}:2,S"
        if bad == "dir":
            entry.mkdir()
        else:
            entry.symlink_to(tmp_path / "nowhere")
        code, out, err = cli("--quiet", "verify", str(store), f"maildir:{out_dir}")
        assert code == 3, out + err
        assert "internal error" not in err and "Traceback" not in err
        assert f"{bad}:2,S" in err
        entry.rmdir() if bad == "dir" else entry.unlink()
    assert cli("--quiet", "verify", str(store), f"maildir:{out_dir}")[0] == 0
