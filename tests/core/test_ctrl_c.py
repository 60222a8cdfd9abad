"""Ctrl-C gives the one-line report and exit 130, never a silent exit.

typer turns a KeyboardInterrupt that leaves a command into a bare exit 130: a Ctrl-C while
`folders` waited for a server's greeting (no run recorded) used to end with no word at all.
An export says at once that it is stopping; a second Ctrl-C stops it where it is.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from pstkit.interrupt import STOPPING
from tests.helpers import REPO


def _interrupted(tmp_path: Path, command: list[str], signals: int) -> tuple[int, str]:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never greets
        port = silent.getsockname()[1]
        secret = tmp_path / "pw"
        secret.write_text("pw\n")
        args = [a.replace("PORT", str(port)) for a in command]
        proc = subprocess.Popen([sys.executable, "-m", "pstkit", *args, "--password-file",
                                 str(secret)], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        conn, _ = silent.accept()  # pstkit is now waiting for the greeting
        said = []
        proc.send_signal(signal.SIGINT)
        if signals > 1:  # the second once the first was taken (two at once are one)
            assert proc.stderr is not None
            while (line := proc.stderr.readline()) and STOPPING not in line:
                said.append(line)
            said.append(line)
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        conn.close()
    return proc.returncode, "".join(said) + err


def test_ctrl_c_while_connecting_says_interrupted(tmp_path: Path) -> None:
    code, err = _interrupted(tmp_path, ["folders", "imap://u@127.0.0.1:PORT"], 1)
    assert code == 130, err
    assert "pstkit: error: interrupted" in err and "Traceback" not in err


def test_export_says_it_is_stopping_and_a_second_ctrl_c_stops_it(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    code, err = _interrupted(tmp_path, ["export", "imap://u@127.0.0.1:PORT", store], 2)
    assert code == 130, err
    assert "stopping… (finishing the message at hand" in err
    assert "pstkit: error: interrupted" in err and "Traceback" not in err
