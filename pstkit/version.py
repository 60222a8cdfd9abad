"""What `pstkit --version` prints: the version, Python, and which optional parts are present.

Presence is looked up with `find_spec` (nothing is imported), so the answer is quick and an
optional part that is broken on import still shows as installed: `pstkit` reports that error
when the part is used.
"""

from __future__ import annotations

import os
import platform
from importlib.machinery import PathFinder
from importlib.util import find_spec

import pstkit
from pstkit import __version__

#: (what the user sees, module that provides it, how to get it)
PARTS: tuple[tuple[str, str, str], ...] = (
    ("PST fallback reader (pypff)", "pypff", "pip install 'pstkit[pst]'"),
    ("C twins of the PST reader", "pstkit.converters.pst._pstspeed", "a C compiler at install"),
    ("IMAP (imapclient)", "imapclient", "pip install 'pstkit[imap]'"),
    ("EWS (exchangelib)", "exchangelib", "pip install 'pstkit[ews]'"),
    ("Graph sign-in (msal)", "msal", "pip install 'pstkit[graph]'"),
    ("Graph HTTP (httpx)", "httpx", "pip install 'pstkit[graph]'"),
    ("Sealed bundles (cryptography)", "cryptography", "pip install 'pstkit[seal]'"),
)


def present(module: str) -> bool:
    parent, _, name = module.rpartition(".")
    if parent.startswith("pstkit."):  # find_spec would import the packages on the way
        where = os.path.join(*pstkit.__path__[:1], *parent.split(".")[1:])
        return PathFinder.find_spec(name, [where]) is not None
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing or broken
        return False


def describe() -> dict[str, object]:
    return {
        "version": __version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "parts": {name: present(module) for name, module, _ in PARTS},
    }


def lines() -> list[str]:
    info = describe()
    out = [f"pstkit {info['version']}", f"python {info['python']}"]
    for name, module, how in PARTS:
        out.append(f"  {name}: {'yes' if present(module) else f'no ({how})'}")
    return out
