"""Two or three examples at the end of every command's help (issue 15.10),
kept in one table so the command modules stay as they are. A command whose
help already has an "Examples:" block keeps its own."""

from __future__ import annotations

from typing import Any

EXAMPLES: dict[str, tuple[str, ...]] = {
    "version": ("pstkit version", "pstkit --json version"),
    "folders": ("pstkit folders mail.pst",
                "pstkit folders imaps://anna@mail.example.com --folder 'INBOX*'",
                "pstkit folders maildir:~/Maildir --exclude Trash   (what export would take)"),
    "export": ("pstkit export mail.pst STORE",
               "pstkit export imaps://anna@mail.example.com STORE --since 2024-01-01",
               "pstkit export imaps://anna@mail.example.com STORE --exclude Trash --dry-run",
               "pstkit export --batch users.csv STORES --server imaps://mail.example.com"),
    "import": ("pstkit import STORE imaps://anna@new.example.com",
               "pstkit import STORE ews://anna@autodiscover --root Archive",
               "pstkit import STORE maildir:OUT --exclude 'Trash*'"),
    "plan": ("pstkit plan STORE imaps://anna@new.example.com",
             "pstkit plan STORE ews://anna@autodiscover --root Archive"),
    "ls": ("pstkit ls STORE", "pstkit --json ls STORE"),
    "check": ("pstkit check STORE", "pstkit check STORE --read-data",
              "pstkit check pst:OUT.pst   (before uploading; a split set: each part)"),
    "unlock": ("pstkit unlock STORE   (only when no pstkit runs on it)",),
    "keygen": ("pstkit keygen --out KEYS", "pstkit keygen --out KEYS --passphrase"),
    "seal": ("pstkit seal STORE /media/usb/anna -r KEYS/recipient.txt --sign-key KEYS/sign.key",
             "pstkit seal STORE /media/usb/anna --passphrase --sign-key KEYS/sign.key "
             "--volume-size 3G"),
    "unseal": ("pstkit unseal /media/usb/anna STORE -i KEYS/identity.age --trust KEYS/sign.pub",
               "pstkit unseal /media/usb/anna STORE --passphrase-file PW --trust KEYS/sign.pub"),
    "worker": ("PSTKIT_BROKER=redis://HOST:6379/0 pstkit worker --concurrency 4",
               "pstkit worker --broker redis://HOST:6379/0 --secret-key-file batch.key"),
    "batch status": ("pstkit batch status --broker redis://HOST:6379/0",
                     "pstkit batch status --broker redis://HOST:6379/0 BATCH_ID --follow"),
    "batch key": ("pstkit batch key batch.key",),
    "batch": ("pstkit batch status --broker redis://HOST:6379/0", "pstkit batch key batch.key"),
}


def add_examples(command: Any, prefix: str = "") -> None:
    """Set the epilog of every (sub)command listed above that has no examples yet."""
    for name, sub in getattr(command, "commands", {}).items():
        key = f"{prefix}{name}"
        known = f"{sub.help or ''}\n{sub.epilog or ''}"
        if key in EXAMPLES and "Examples:" not in known:
            lines = "\n".join(f"  {e}" for e in EXAMPLES[key])
            sub.epilog = f"\b\nExamples:\n{lines}" + (f"\n\n{sub.epilog}" if sub.epilog else "")
        add_examples(sub, f"{key} ")
