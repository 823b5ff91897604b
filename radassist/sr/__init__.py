"""The DICOM Structured Report that carries a draft back to the PACS."""

from radassist.sr.document import build_draft_sr
from radassist.sr.uids import device_observer_uid, sr_uids_for_job

__all__ = ["build_draft_sr", "device_observer_uid", "sr_uids_for_job"]
