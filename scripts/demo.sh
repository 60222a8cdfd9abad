#!/usr/bin/env bash
# The main job end to end on the bundled sample mailbox, in a scratch directory:
# export -> check -> plan -> import -> verify into a Maildir, then the same store into an
# Outlook PST (the file Exchange's and Microsoft 365's PST import take) and a migration
# report to hand to a customer. tests/core/test_demo.py runs it.
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
"$PSTKIT" import "$work/store" "pst:$work/mailbox.pst"
"$PSTKIT" verify "$work/store" "pst:$work/mailbox.pst"
"$PSTKIT" folders "$work/mailbox.pst"
"$PSTKIT" report "$work/store" --target "pst:$work/mailbox.pst" --html "$work/report.html"
set +x
echo "demo done in $work: store/, restored/ (Maildir), mailbox.pst, report.html" >&2
