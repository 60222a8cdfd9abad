"""`pstkit export --batch users.csv STORE_DIR` against a real Dovecot."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, cli_json, make_message, run_pstkit
from tests.servers.dovecot import Dovecot, unique_user


def test_batch_exports_each_mailbox_and_reports_failures(dovecot: Dovecot, tmp_path: Path) -> None:
    users = [dovecot.add_user(unique_user("b"), f"Pw-{i}-s3cret!") for i in range(3)]
    for i, user in enumerate(users):
        for j in range(i + 1):
            dovecot.append(user, "INBOX", make_message(100 * i + j))
        dovecot.append(user, "Archive/2024", make_message(100 * i + 50))
    wrong = "Not-The-Password-42"
    csv_file = tmp_path / "users.csv"
    rows = [f"{u.name}@example.com,{u.name},{u.password}" for u in users[:2]]
    rows.append(f"{users[2].name}@example.com,{users[2].name},{wrong}")
    csv_file.write_text("EmailAddress,UserName,Password\n" + "\n".join(rows) + "\n")
    stores = tmp_path / "stores"
    code, out, err = cli("--json", "export", "--batch", csv_file, stores,
                         "--server", f"imaps://127.0.0.1:{dovecot.imaps_port}",
                         "--ca-file", dovecot.ca_file)  # fmt: skip
    assert code == 1, err
    results = {r["email"].split("@")[0]: r for r in json.loads(out)}
    assert results[users[0].name]["messages"] == 2 and results[users[1].name]["messages"] == 3
    assert results[users[0].name]["exit_code"] == 0
    failed = results[users[2].name]
    assert failed["exit_code"] == 6 and "authentication failed" in failed["error"]
    # Passwords appear nowhere: not in output, logs or any file of any store.
    secrets = [u.password for u in users[:2]] + [wrong]
    for text in (out, err):
        assert not any(s in text for s in secrets)
    for path in stores.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path
    # Each store is a normal, complete store.
    code, listing = cli_json("ls", stores / f"{users[1].name}@example.com")
    assert sum(f["messages"] for f in listing["folders"]) == 3  # type: ignore[index]


def test_batch_csv_errors_are_one_line(tmp_path: Path) -> None:
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("EmailAddress,UserName,Password\nbob@example.com,bob,x\n")
    code, _, err = cli("export", "--batch", csv_file, tmp_path / "stores")
    assert code == 2 and "no Server column and no --server" in err


def test_batch_rerun_table_totals_report_files_and_decoded_errors(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """Issue 15.6, through the CLI in a child process: a re-run shows the store's
    messages next to 0 new, a totals row, CSV+JSON report files, and the server's
    refusal as text (not `b'[AUTHENTICATIONFAILED] …'`)."""
    users = [dovecot.add_user(unique_user("r"), f"Pw-{i}-s3cret!") for i in range(2)]
    for i, user in enumerate(users):
        for j in range(i + 2):
            dovecot.append(user, "INBOX", make_message(300 + 10 * i + j))
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("EmailAddress,UserName,Password\n"
                        f"{users[0].name}@example.com,{users[0].name},{users[0].password}\n"
                        f"{users[1].name}@example.com,{users[1].name},{users[1].password}\n"
                        f"{users[1].name}x@example.com,{users[1].name},Wrong-Pass-9\n")  # fmt: skip
    stores = tmp_path / "stores"
    args = ["export", "--batch", csv_file, stores, "--server",
            f"imaps://127.0.0.1:{dovecot.imaps_port}", "--ca-file", dovecot.ca_file]  # fmt: skip
    first = run_pstkit(*args)
    assert first.returncode == 1, first.stderr
    again = run_pstkit(*args)
    assert again.returncode == 1, again.stderr
    rows = {line.split()[0]: line.split() for line in again.stdout.splitlines()}
    # mailbox folders messages new MB skipped s result
    assert rows[f"{users[1].name}@example.com"][2:4] == ["3", "0"], again.stdout
    total = next(line for line in again.stdout.splitlines() if line.startswith("total"))
    assert total.split()[4:6] == ["5", "0"], total
    assert "2 ok, 1 failed" in total
    assert "b'" not in again.stdout and "AUTHENTICATIONFAILED" in again.stdout, again.stdout
    reports = sorted(stores.glob("batch-*.json"))
    assert len(reports) == 2 and len(sorted(stores.glob("batch-*.csv"))) == 2
    data = json.loads(reports[-1].read_text())
    assert data["totals"]["messages"] == 5 and data["totals"]["new"] == 0
    assert [m["messages"] for m in data["mailboxes"]] == [2, 3, 0]
    lines = reports[-1].with_suffix(".csv").read_text().splitlines()
    assert lines[0].startswith("email,result,folders,messages,new") and len(lines) == 5
    assert str(reports[-1].with_suffix(".csv")) in again.stderr
