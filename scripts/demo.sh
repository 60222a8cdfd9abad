#!/usr/bin/env bash
# The main job end to end on the bundled sample mailbox:
# export -> check -> plan -> import -> verify, in a scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."
PSTKIT=${PSTKIT:-.venv/bin/pstkit}
work=$(mktemp -d "${TMPDIR:-/tmp}/pstkit-demo.XXXXXX")
set -x
"$PSTKIT" folders fixtures/sample-maildir
"$PSTKIT" export fixtures/sample-maildir "$work/store"
"$PSTKIT" check --read-data "$work/store"
"$PSTKIT" ls "$work/store"
"$PSTKIT" plan "$work/store" "maildir:$work/restored"
"$PSTKIT" import "$work/store" "maildir:$work/restored"
"$PSTKIT" import "$work/store" "maildir:$work/restored"   # a re-run delivers nothing twice
"$PSTKIT" verify "$work/store" "maildir:$work/restored"
set +x
echo "demo done: store in $work/store, restored Maildir in $work/restored" >&2
