"""Deterministic UIDs, derived from our own UUIDs under the 2.25 root.

A retried delivery must send the very same SR object (same Series and SOP Instance UIDs), so a
PACS replaces it instead of filing a duplicate; deriving the UIDs from the job UUID gives that
without storing anything new.
"""

from __future__ import annotations

import uuid

import highdicom as hd

# Fixed namespace for RadAssist's name-based (uuid5) identifiers; never change it, or every
# retry of an existing job would produce new UIDs.
RADASSIST_NAMESPACE = uuid.UUID("7b0c4f0e-5d0a-5e8e-9b1d-2f6a0d3c9a41")


def sr_uids_for_job(job_id: uuid.UUID, sr_class: str = "enhanced") -> tuple[str, str]:
    """Return ``(series_instance_uid, sop_instance_uid)`` for the SR of class ``sr_class`` drafted
    by ``job_id``.

    One job may produce one SR per SR class (a Basic Text SR for an old PACS next to the Enhanced
    SR for the others).  Different SOP classes must not share a SOP Instance UID, so each class
    gets its own, derived from the job and the class; the Enhanced SR keeps the job's own UUID.
    All of a job's SRs share one series.
    """
    if not isinstance(job_id, uuid.UUID):
        raise TypeError(f'Argument "job_id" must be a uuid.UUID, not {type(job_id).__name__}.')
    if sr_class not in ("enhanced", "comprehensive", "basic"):
        raise ValueError('Argument "sr_class" must be "enhanced", "comprehensive" or "basic".')
    series = uuid.uuid5(RADASSIST_NAMESPACE, f"sr-series:{job_id}")
    if sr_class == "enhanced":
        instance = job_id
    else:
        instance = uuid.uuid5(RADASSIST_NAMESPACE, f"sr-instance:{sr_class}:{job_id}")
    return str(hd.UID.from_uuid(str(series))), str(hd.UID.from_uuid(str(instance)))


def device_observer_uid(model_name: str, model_revision: str | None) -> str:
    """A UID that names one model version as an SR device observer, the same in every report."""
    if not model_name:
        raise ValueError('Argument "model_name" must not be empty.')
    key = f"device-observer:{model_name}\x00{model_revision or ''}"
    return str(hd.UID.from_uuid(str(uuid.uuid5(RADASSIST_NAMESPACE, key))))
