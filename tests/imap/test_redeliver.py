"""Issue 15 points 2 and 7 against Dovecot, through the CLI in child processes:
messages deleted on the server come back once with `--redeliver-missing`; a
store damaged after an IMAP export is repaired by re-running the export; a
failed login leaves no store behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from pstkit.store import Store
from tests.helpers import make_message, run_pstkit, write_maildir
from tests.servers.dovecot import Account, Dovecot, unique_user


def _url(server: Dovecot, user: Account) -> list[str]:
    return [f"imaps://{user.name}@127.0.0.1:{server.imaps_port}", "--ca-file",
            str(server.ca_file)]  # fmt: skip


def _inbox_subjects(server: Dovecot, user: Account) -> list[str]:
    with server.client(user) as c:
        c.select_folder("INBOX", readonly=True)
        uids = c.search(["ALL"])
        data = c.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
        return sorted(d[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip() for d in data.values())


def test_messages_deleted_on_the_server_come_back_once(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("redeliver"), "pw")
    env = {"PSTKIT_PASSWORD": "pw"}
    src, store = tmp_path / "src", tmp_path / "store"
    write_maildir(src, {"": [(make_message(i), "S") for i in range(5)]})
    assert run_pstkit("export", f"maildir:{src}", store).returncode == 0
    res = run_pstkit("import", store, *_url(dovecot, user), env=env)
    assert res.returncode == 0, res.stderr
    whole = _inbox_subjects(dovecot, user)
    assert len(whole) == 5
    with dovecot.client(user) as c:
        c.select_folder("INBOX")
        c.delete_messages(c.search(["ALL"])[:2])
        c.expunge()
    res = run_pstkit("verify", store, *_url(dovecot, user), env=env)
    assert res.returncode == 1 and "3 matching, 2 missing" in res.stdout
    assert "--redeliver-missing" in res.stderr
    res = run_pstkit("import", store, *_url(dovecot, user), "--redeliver-missing", env=env)
    assert res.returncode == 0, res.stderr
    assert _inbox_subjects(dovecot, user) == whole
    res = run_pstkit("import", store, *_url(dovecot, user), "--redeliver-missing", env=env)
    assert res.returncode == 0 and _inbox_subjects(dovecot, user) == whole
    assert run_pstkit("verify", store, *_url(dovecot, user), env=env).returncode == 0


def test_rerunning_an_imap_export_repairs_the_store(dovecot: Dovecot, tmp_path: Path) -> None:
    user = dovecot.add_user(unique_user("repair"), "pw")
    env = {"PSTKIT_PASSWORD": "pw"}
    for i in range(4):
        dovecot.append(user, "INBOX", make_message(i))
    store = tmp_path / "store"
    assert run_pstkit("export", *_url(dovecot, user)[:1], store, *_url(dovecot, user)[1:],
                      env=env).returncode == 0  # fmt: skip
    with Store.open(store) as st:
        paths = [st.message_path(r) for r in st.rows()]
    paths[1].unlink()
    res = run_pstkit("check", store)
    assert res.returncode == 4 and "pstkit export imaps://" in res.stderr
    res = run_pstkit("export", *_url(dovecot, user)[:1], store, *_url(dovecot, user)[1:],
                     env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert run_pstkit("check", store, "--read-data").returncode == 0


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_login_leaves_no_empty_store(
    dovecot: Dovecot, tmp_path: Path, existing: bool
) -> None:
    user = dovecot.add_user(unique_user("badlogin"), "pw")
    store = tmp_path / "store"
    if existing:
        src = tmp_path / "src"
        write_maildir(src, {"": [(make_message(1), "")]})
        assert run_pstkit("export", f"maildir:{src}", store).returncode == 0
    url = _url(dovecot, user)
    res = run_pstkit("export", url[0], store, *url[1:], "--add-source",
                     env={"PSTKIT_PASSWORD": "wrong"})  # fmt: skip
    assert res.returncode == 6, res.stderr
    if not existing:
        assert not store.exists()
        return
    with Store.open(store) as st:
        runs = st.catalog.runs()
    assert runs[-1][5] == "failed" and "error" in str(runs[-1])
