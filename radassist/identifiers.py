"""Identifiers: the exact UID rule, and the handles that stand in for values we must not store or log.

A UID names one study, series or instance for ever, so it is checked exactly (PS3.5 9.1) before it
is trusted: ``1.2.3`` and ``1.2.3\\n`` must never become two studies.  The accession number is
kept only as :func:`accession_hash` (orders, reports and studies are joined on it); logs name a
study by :func:`study_handle`, the same short hash of its Study Instance UID in every process, so
one grep follows a study from C-STORE to ACK.
"""

from __future__ import annotations

import hashlib
import re

UID_MAX_LENGTH = 64
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
"""PS3.5 9.1: components of digits separated by dots, no component empty or with a leading zero."""
_UID_PADDING = "\x00 "
"""What pads a UI value to an even length: a NUL by the standard, a space by common practice."""


def is_valid_uid(text: str) -> bool:
    """True when ``text`` is a UID by PS3.5 9.1, exactly: at most 64 characters, digits and dots,
    no empty component, no leading zero in a component, and nothing (not even a newline) after the
    last digit."""
    return len(text) <= UID_MAX_LENGTH and _UID.fullmatch(text) is not None


def uid_value(raw: str) -> str:
    """The UID in a received UI value: its padding (trailing NULs or spaces) removed, nothing else.

    Raises ``ValueError`` when what is left is not a UID by :func:`is_valid_uid`.
    """
    text = raw.rstrip(_UID_PADDING)
    if not is_valid_uid(text):
        raise ValueError("not a valid UID")
    return text


def accession_hash(accession_number: str | None) -> str | None:
    """The 16-hex handle stored instead of the accession number."""
    if not accession_number:
        return None
    return hashlib.sha256(accession_number.encode("utf-8")).hexdigest()[:16]


def study_handle(study_instance_uid: str | None) -> str:
    """The 12-hex handle of a study in log lines (never the UID itself above DEBUG)."""
    if not study_instance_uid:
        return "-"
    return hashlib.sha256(study_instance_uid.encode("utf-8")).hexdigest()[:12]
