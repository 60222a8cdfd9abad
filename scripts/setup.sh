#!/usr/bin/env bash
# Install what pstkit needs on Debian/Ubuntu (Python >= 3.11) into ./.venv.
#   bash scripts/setup.sh         # runtime (all converters)
#   bash scripts/setup.sh --dev   # + test tools and the servers the tests start
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; [ "${1:-}" = "--dev" ] && dev=1

apt_packages="python3-venv python3-pip tzdata"
if [ "$dev" = 1 ]; then
    # Dovecot (IMAP/POP3 test server), mtools (FAT32 images), readpst (PST comparison),
    # mbsync (benchmark peer), openssl (test certificates), redis (the celery engine's broker),
    # age and minisign (the tests hold sealed bundles to the reference tools).
    apt_packages="$apt_packages dovecot-imapd dovecot-pop3d mtools pst-utils isync openssl ca-certificates"
    apt_packages="$apt_packages redis-server redis-tools age minisign"
fi
# Chromium renders `pstkit report`'s HTML in its test (headless --dump-dom).
if [ "$dev" = 1 ]; then apt_packages="$apt_packages chromium"; fi
# A C compiler and Python's headers build the optional speed-ups (converters/pst/_pstspeed.c);
# without them pstkit still installs and runs, only its PST reading is slower.
command -v cc >/dev/null 2>&1 || apt_packages="$apt_packages gcc libc6-dev"
if ! python3 -c 'import os, sysconfig; p = sysconfig.get_path("include"); raise SystemExit(not os.path.exists(os.path.join(p, "Python.h")))' 2>/dev/null; then
    apt_packages="$apt_packages python3-dev"
fi
missing=""
for p in $apt_packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # policy-rc.d keeps the packaged Dovecot service from starting: tests run their own.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"pstkit needs Python 3.11 or newer, this is {sys.version.split()[0]}")
PY
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$dev" = 1 ]; then extra="dev"; else extra="all"; fi
# PYTHONWARNINGS: setuptools warns about every editable install that builds a C part.
PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".[$extra]"
# An editable install is not byte-compiled; where PYTHONDONTWRITEBYTECODE is set (as on some
# build machines) every start would compile pstkit's sources again.
.venv/bin/python -m compileall -q pstkit >/dev/null
if [ "$dev" = 1 ]; then
    # Cyrus and Courier (the IMAP test matrix) conflict with dovecot-imapd as packages:
    # fetched with apt-get download and unpacked into a cache, never installed.
    python3 scripts/fetch_servers.py
fi
echo "pstkit installed in .venv ($(.venv/bin/pstkit --help >/dev/null && echo ok))" >&2
