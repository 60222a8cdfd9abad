"""One exception tree; each class carries its exit code and a hint.

As in borg: the docstring of a class is its user message template, formatted
with the constructor's positional arguments. The CLI's single top-level
handler prints `pstkit: error: <message>` and `hint: <hint>` and exits with
`exit_code`. Converters translate library exceptions at their edge only
(`raise ConnectError(...) from e`), so nothing else needs to know them.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_PROBLEMS = 1  # finished, but some items were skipped or failed
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_INTEGRITY = 4
EXIT_CONNECTION = 5
EXIT_AUTH = 6
EXIT_INTERRUPTED = 130


class PstkitError(Exception):
    """{}"""

    exit_code: ClassVar[int] = EXIT_USAGE
    hint: ClassVar[str] = ""

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        self._hint = hint

    @property
    def message(self) -> str:
        template = (type(self).__doc__ or "{}").strip().splitlines()[0]
        try:
            text = template.format(*self.args)
        except (IndexError, KeyError, ValueError):
            text = " ".join(str(a) for a in self.args) or template
        # One line, always: a multi-line library message must not break the contract.
        return " ".join(text.split())

    def hint_text(self) -> str:
        return self._hint if self._hint is not None else type(self).hint

    def __str__(self) -> str:
        return self.message


# --- usage -----------------------------------------------------------------


class UsageError(PstkitError):
    """{}"""

    exit_code = EXIT_USAGE


class BadLocation(UsageError):
    """cannot understand location {!r}: {}"""

    hint = "use e.g. maildir:PATH, mbox:FILE, eml:DIR, pst:FILE, imaps://user@host, ews://host"


class MissingDependency(UsageError):
    """{} needs the optional package {!r}"""

    def __init__(self, what: str, package: str, extra: str) -> None:
        super().__init__(what, package, hint=f"pip install 'pstkit[{extra}]'")


class SecretError(UsageError):
    """cannot read the secret: {}"""

    hint = "give it with PSTKIT_PASSWORD, --password-file, --password-command or at the prompt"


# --- store -----------------------------------------------------------------


class StoreError(PstkitError):
    """store error: {}"""

    exit_code = EXIT_STORE


class StoreNotFound(StoreError):
    """no pstkit store at {}"""

    hint = "create one with `pstkit export SOURCE STORE`"


class StoreExists(StoreError):
    """{} exists and is not a pstkit store"""

    hint = "choose an empty or new directory"


class StoreLocked(StoreError):
    """store {} is locked by {}"""

    hint = "another pstkit is writing it; if that process is gone, run `pstkit unlock STORE`"


class StoreVersionError(StoreError):
    """store {} has format version {}, this pstkit reads up to {}"""

    hint = "upgrade pstkit to read this store"


class StoreWriteError(StoreError):
    """cannot write {}: {}"""

    hint = "check free space and permissions on the destination"


class TargetWriteError(StoreError):
    """cannot write to target {}: {}"""

    hint = "check that the target exists, is writable and has free space"


class TargetReadError(TargetWriteError):
    """cannot read target {}: {}"""

    # a file target pstkit reads back (verify, plan, an append): damaged or not its own
    hint = ("to see what it holds, read it as a source (`pstkit folders FILE`); to write "
            "anew, give the target a new name")


class TargetNotFound(StoreError):
    """no such target: {}"""

    hint = "check the path; `pstkit import` makes a new target (`pstkit plan` previews it)"


# --- integrity -------------------------------------------------------------


class IntegrityError(PstkitError):
    """store damaged: {}"""

    exit_code = EXIT_INTEGRITY
    hint = "run `pstkit check STORE --read-data` for the full list"


# --- connectors ------------------------------------------------------------


class ConnectorError(PstkitError):
    """{}"""

    exit_code = EXIT_CONNECTION


class ConnectError(ConnectorError):
    """cannot connect to {}: {}"""

    hint = "check host, port, TLS settings and the network"


class TLSError(ConnectError):
    """TLS failed with {}: {}"""

    hint = "give the server's CA with --ca-file, or --insecure if you trust this network"


class TLSPortError(TLSError):
    """cannot connect to {}: {}"""

    hint = ("imap:// and pop3:// expect a plain greeting (then STARTTLS); "
            "imaps:// and pop3s:// speak TLS from the first byte")


class TransientError(ConnectorError):
    """temporary failure at {}: {}"""

    hint = "try again later; pstkit resumes where it stopped"


class AuthError(ConnectorError):
    """authentication failed at {}: {}"""

    exit_code = EXIT_AUTH
    hint = "check the user name and password or token; it was not retried"


class SourceError(ConnectorError):
    """cannot read source {}: {}"""

    exit_code = EXIT_USAGE


class QuotaExceeded(ConnectorError):
    """target {} is over quota: {}"""

    hint = "free space in the target mailbox, then re-run: nothing is delivered twice"


# --- per message -----------------------------------------------------------


class MessageError(PstkitError):
    """{}"""

    # Never reaches the top-level handler: pipelines record it and go on.
    exit_code = EXIT_PROBLEMS


class Interrupted(PstkitError):
    """interrupted"""

    exit_code = EXIT_INTERRUPTED
    hint = "re-run the same command to resume"
