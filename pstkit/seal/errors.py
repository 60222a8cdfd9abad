"""Errors of sealed bundles and their keys, in the house exception tree."""

from __future__ import annotations

from pstkit.errors import EXIT_AUTH, IntegrityError, PstkitError, StoreError, UsageError


class BundleDamaged(IntegrityError):
    """bundle damaged: {}"""

    hint = "the bundle was altered or is incomplete; seal it again from the source"


class UntrustedSigner(IntegrityError):
    """bundle not trusted: {}"""

    hint = "check --trust: it must be the sign.pub of the key that sealed the bundle"


class BundleError(StoreError):
    """bundle error: {}"""

    hint = "give a new or empty directory, or a bundle written by `pstkit seal`"


class BundleVersionError(StoreError):
    """bundle has format version {}, this pstkit reads up to {}"""

    hint = "upgrade pstkit to open this bundle"


class KeyFileError(UsageError):
    """key file {}: {}"""

    hint = "create keys with `pstkit keygen --out DIR`"


class DecryptionFailed(PstkitError):
    """cannot decrypt {}: {}"""

    exit_code = EXIT_AUTH
    hint = "give the identity (or passphrase) of a recipient the bundle was sealed to"


class UnsealTarget(StoreError):
    """{} {}"""

    hint = "unseal into a new or empty directory"
