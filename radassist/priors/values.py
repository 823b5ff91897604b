"""DICOM values as the search compares them: dates, times and one-line text, unreadable as unknown."""

from __future__ import annotations

import datetime as dt

import pydicom

from radassist.text import joined


def dicom_date(value: object) -> dt.date | None:
    """A DA value (``YYYYMMDD``) as a date; None when absent or malformed."""
    text = joined(value) or ""
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return None


def dicom_time(value: object) -> dt.time | None:
    """A TM value (``HH``, ``HHMM``, ``HHMMSS[.f]``) as a time, fractions dropped; None when unreadable."""
    text = (joined(value) or "").split(".")[0]
    for pattern in ("%H%M%S", "%H%M", "%H"):
        try:
            return dt.datetime.strptime(text, pattern).time()
        except ValueError:
            continue
    return None


def text_of(ds: pydicom.Dataset, keyword: str) -> str:
    """The element as one line of text; empty when absent, empty or malformed."""
    try:
        return joined(ds.get(keyword)) or ""
    except Exception:  # noqa: BLE001 -- a malformed element is an unknown value, not a failed search
        return ""
