"""Third-party warnings reach the log without the element values they quote."""

from __future__ import annotations

import io
import logging
import warnings

from pydicom.config import WARN
from pydicom.config import settings as pydicom_settings
from pydicom.dataset import Dataset

from radassist.logging import configure_logging


def test_pydicom_invalid_value_warnings_are_logged_without_the_value(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    configure_logging("INFO")
    root = logging.getLogger()
    monkeypatch.setattr(root.handlers[0], "stream", stream)
    before = pydicom_settings.reading_validation_mode, pydicom_settings.writing_validation_mode
    pydicom_settings.reading_validation_mode = pydicom_settings.writing_validation_mode = WARN  # as a node runs
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            ds = Dataset()
            ds.PatientAge = "SENTINEL"  # not an AS value: pydicom warns, quoting it
    finally:
        pydicom_settings.reading_validation_mode, pydicom_settings.writing_validation_mode = before
        logging.captureWarnings(False)
    text = stream.getvalue()
    assert "Invalid value for VR AS" in text, text
    assert "SENTINEL" not in text
