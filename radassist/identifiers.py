"""Handles that stand in for identifiers we must not store or log as they are.

The accession number is kept only as :func:`accession_hash` (orders, reports and studies are
joined on it); logs name a study by :func:`study_handle`, the same short hash of its Study
Instance UID in every process, so one grep follows a study from C-STORE to ACK.
"""

from __future__ import annotations

import hashlib


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
