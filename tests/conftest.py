"""Shared fixtures. The real-mail corpus is read from ../shared/corpus (never copied)."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

# The mail server and Redis fixtures, declared once here (pytest rewrites asserts only in plugins
# named by the root conftest).
pytest_plugins = ["tests.servers.dovecot", "tests.servers.cyrus", "tests.servers.courier",
                  "tests.servers.redis"]

REPO = Path(__file__).resolve().parents[1]

# A shell starts background jobs (`pytest … &`, nohup, some CI runners) with SIGINT ignored, and
# an ignored signal stays ignored across exec: every pstkit child would then shrug off the
# Ctrl-C that the interrupt tests send, and they fail only when the suite runs in the
# background. A terminal's Ctrl-C is what they test, so the suite restores the default handler
# (children then start with SIGINT at its default, as from a terminal).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# A developer's own ~/.config/pstkit/config.toml (option defaults, profiles) must not change
# what the tests see: the suite and its pstkit children read the config from an empty place.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="pstkit-tests-config-")


def corpus_root() -> Path:
    return Path(os.environ.get("PSTKIT_CORPUS", REPO.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    root = corpus_root()
    if not root.is_dir():
        pytest.skip(f"corpus not found at {root}")
    return root


@pytest.fixture(scope="session")
def ews_schema_dir() -> Path:
    root = Path(os.environ.get("PSTKIT_EWS_SCHEMA", REPO.parent / "shared" / "ews-schema"))
    if not root.is_dir():
        pytest.skip(f"EWS schema not found at {root}")
    return root
