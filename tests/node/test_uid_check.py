"""pynetdicom's UID check is remembered per UID (dicom_node.fastpath.uid_check): the same answers as the
check it stands in for, asked once per UID and conformance setting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydicom import config as pydicom_config
from pynetdicom import _config
from pynetdicom._validators import validate_ui
from pynetdicom.utils import set_uid

from dicom_node import fastpath
from dicom_node.fastpath.uid_check import RememberedUidCheck, remember_uid_checks

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")  # pydicom's warnings about the bad UIDs below

UIDS = [
    "1.2.840.10008.5.1.4.1.1.2",
    "1.2.840.10008.1.2.1",
    "1." + "2" * 63,  # 65 characters
    "1.02.3",  # a leading zero: allowed unless conformance is enforced
    "1.2.é",
    "",
]


@pytest.fixture(autouse=True)
def as_a_node_runs() -> Iterator[None]:
    """pydicom warns about an invalid UI value where the test suite makes it raise."""
    before = pydicom_config.settings.reading_validation_mode
    pydicom_config.settings.reading_validation_mode = pydicom_config.WARN
    yield
    pydicom_config.settings.reading_validation_mode = before


@pytest.fixture
def enforce_setting() -> Iterator[None]:
    before = _config.ENFORCE_UID_CONFORMANCE
    yield
    _config.ENFORCE_UID_CONFORMANCE = before


@pytest.mark.parametrize("enforce", [False, True])
def test_the_answers_are_pynetdicoms(enforce: bool, enforce_setting: None) -> None:
    _config.ENFORCE_UID_CONFORMANCE = enforce
    remembered = RememberedUidCheck(validate_ui)
    for uid in UIDS:
        assert remembered(uid) == validate_ui(uid)
        assert remembered(uid) == validate_ui(uid)  # remembered


def test_each_uid_is_asked_once_per_conformance_setting(enforce_setting: None) -> None:
    asked: list[Any] = []

    def check(value: Any) -> tuple[bool, str]:
        asked.append(value)
        return validate_ui(value)

    remembered = RememberedUidCheck(check)
    _config.ENFORCE_UID_CONFORMANCE = False
    for _ in range(3):
        assert remembered("1.02.3") == (True, "")
    _config.ENFORCE_UID_CONFORMANCE = True
    assert remembered("1.02.3") == (False, "UID is non-conformant")
    assert asked == ["1.02.3", "1.02.3"]
    assert remembered(b"1.2") == (False, "must be pydicom.uid.UID")  # not a str: asked afresh
    assert asked[-1] == b"1.2"


def test_the_fast_path_installs_it_once_and_pynetdicom_uses_it(enforce_setting: None) -> None:
    _config.ENFORCE_UID_CONFORMANCE = False
    fastpath.install()
    remember_uid_checks()
    check = _config.VALIDATORS["UI"]
    assert isinstance(check, RememberedUidCheck)
    assert not isinstance(check.check, RememberedUidCheck)
    assert set_uid("1.2.840.10008.5.1.4.1.1.2", "AffectedSOPClassUID") == "1.2.840.10008.5.1.4.1.1.2"
    with pytest.raises(ValueError, match="must not exceed 64 characters"):
        set_uid("1." + "2" * 63, "AffectedSOPInstanceUID")
