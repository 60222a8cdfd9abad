"""The config file (issue 15.13), through the CLI in child processes: option defaults
per command, profiles as `@NAME`/`profile:NAME`, the command line winning, the default
place under XDG_CONFIG_HOME, and secrets refused unless the file is private."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import make_message, run_pstkit, write_maildir


def _maildir(tmp: Path) -> Path:
    src = tmp / "src"
    write_maildir(src, {"": [(make_message(i), "") for i in range(3)], ".Sent": []})
    return src


def _layout(store: Path) -> str:
    return str(json.loads((store / "pstkit-store.json").read_text())["layout"])


def test_defaults_and_profiles_with_the_command_line_winning(tmp_path: Path) -> None:
    src = _maildir(tmp_path)
    cfg = tmp_path / "pstkit.toml"
    cfg.write_text(f'[defaults.export]\nformat = "mbox"\n\n'
                   f'[profiles.old]\nlocation = "maildir:{src}"\nexclude = ["Sent"]\n')
    done = run_pstkit("--config", cfg, "export", "@old", tmp_path / "a")
    assert done.returncode == 0, done.stderr
    assert _layout(tmp_path / "a") == "mbox"  # from [defaults.export]
    listed = run_pstkit("ls", tmp_path / "a").stdout
    assert "Sent" not in listed  # from the profile
    done = run_pstkit("export", "profile:old", tmp_path / "b", "--format", "maildir",
                      "--config", cfg)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _layout(tmp_path / "b") == "maildir"  # the command line wins


def test_the_default_place_honours_xdg_config_home(tmp_path: Path) -> None:
    src = _maildir(tmp_path)
    home = tmp_path / "xdg"
    (home / "pstkit").mkdir(parents=True)
    (home / "pstkit" / "config.toml").write_text(
        f'[defaults]\nquiet = true\n[profiles.here]\nlocation = "maildir:{src}"\n')
    done = run_pstkit("export", "@here", tmp_path / "st", env={"XDG_CONFIG_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert "3 new" in done.stderr


def test_mistakes_are_one_line_usage_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cases = {
        '[defaults.export]\nno-such = 1\n': "[defaults.export] no-such: no such option for export",
        '[defaults.exprot]\nformat = "mbox"\n': "there is no command 'exprot'",
        '[profile.x]\nlocation = "a"\n': "unknown section [profile]",
        '[profiles.x]\nformat = "mbox"\n': 'needs location = "…"',
        '[defaults\n': "cannot read config",
        '[profiles.x]\nlocation = "a"\ntoken = "t"\n': "use token-file or token-command",
    }
    for text, message in cases.items():
        cfg.write_text(text)
        done = run_pstkit("--config", cfg, "ls", tmp_path)
        assert done.returncode == 2, (text, done.stderr)
        assert message in done.stderr, (text, done.stderr)
        assert "Traceback" not in done.stderr
    done = run_pstkit("--config", tmp_path / "none.toml", "ls", tmp_path)
    assert done.returncode == 2 and "no config file" in done.stderr
    cfg.write_text(f'[profiles.x]\nlocation = "maildir:{tmp_path}"\n')
    done = run_pstkit("--config", cfg, "folders", "@y")
    assert done.returncode == 2 and "no profile 'y'" in done.stderr and "profiles: x" in done.stderr


def test_a_secret_in_a_readable_config_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[profiles.x]\nlocation = "imaps://u@127.0.0.1:1"\npassword = "hunter2"\n')
    os.chmod(cfg, 0o644)
    done = run_pstkit("--config", cfg, "folders", "@x")
    assert done.returncode == 2, done.stderr
    assert "holds a secret ([profiles.x] password)" in done.stderr
    assert "mode 0644" in done.stderr and f"chmod 600 {cfg}" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
