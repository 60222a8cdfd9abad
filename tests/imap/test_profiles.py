"""Config profiles against a real Dovecot (issue 15.13): a private (0600) config may hold
the password; `[defaults]` gives the CA; the secret reaches the server, never the
store's run log, stdout or stderr."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import make_message, run_pstkit
from tests.servers.dovecot import Dovecot, unique_user


def test_export_with_a_profile_holding_the_password(dovecot: Dovecot, tmp_path: Path) -> None:
    pw = "config s3cret"
    user = dovecot.add_user(unique_user(), pw)
    dovecot.append_many(user, "INBOX", [(make_message(i), (), None) for i in range(3)])
    home = tmp_path / "xdg"
    (home / "pstkit").mkdir(parents=True)
    cfg = home / "pstkit" / "config.toml"
    cfg.write_text(f'[defaults]\nca-file = "{dovecot.ca_file}"\n\n'
                   f'[profiles.old]\nlocation = "imaps://{user.name}@127.0.0.1:{dovecot.imaps_port}"\n'
                   f'password = "{pw}"\n')  # fmt: skip
    os.chmod(cfg, 0o600)
    env = {"XDG_CONFIG_HOME": str(home), "PSTKIT_PASSWORD": ""}
    done = run_pstkit("export", "@old", tmp_path / "st", env=env)
    assert done.returncode == 0, done.stderr
    assert "3 new" in done.stderr
    logs = "".join(p.read_text() for p in (tmp_path / "st" / "logs").glob("*.log"))
    assert "@old" in logs  # the command line as typed
    assert pw not in logs + done.stdout + done.stderr
    os.chmod(cfg, 0o640)
    done = run_pstkit("export", "@old", tmp_path / "st", env=env)
    assert done.returncode == 2 and "holds a secret" in done.stderr
