"""The listener writes the file meta itself (dicom_node.part10): it must be pynetdicom's, byte for byte."""

from __future__ import annotations

from io import BytesIO
from types import SimpleNamespace

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom.dsutils import create_file_meta, encode_file_meta

from dicom_node.part10 import PREAMBLE, file_meta_group, part10_stream
from radassist.errors import RejectedInput

LONG_UID = "1.2.826.0.1.3680043.8.498.31285283700303475180633743980032337045"
"""A 64-character UID (as pydicom's generate_uid makes), fixed so every pytest-xdist worker collects the same test ids."""


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "transfer_syntax"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", ExplicitVRLittleEndian),  # even lengths
        ("1.2.840.10008.5.1.4.1.1.7", "1.2.3.45", ImplicitVRLittleEndian),  # odd lengths: padded
        ("1.2.840.10008.5.1.4.1.1.88.22", LONG_UID, JPEG2000Lossless),
        ("1.2.840.10008.5.1.4.1.1.2", "1." + "2" * 62, ExplicitVRLittleEndian),  # 64 characters
    ],
)
def test_file_meta_is_the_librarys(sop_class: str, sop_instance: str, transfer_syntax: str) -> None:
    ours = file_meta_group(sop_class, sop_instance, transfer_syntax)
    library = encode_file_meta(
        create_file_meta(sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=transfer_syntax)
    )
    assert ours == library


def test_the_stream_is_a_part10_file_of_the_received_data_set() -> None:
    dataset = b"\x08\x00\x60\x00CS\x02\x00OT"  # (0008,0060) Modality "OT", explicit VR LE
    event = SimpleNamespace(
        request=SimpleNamespace(
            DataSet=BytesIO(dataset), AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.7", AffectedSOPInstanceUID="1.2.3"
        ),
        context=SimpleNamespace(transfer_syntax=ExplicitVRLittleEndian),
    )
    stream = part10_stream(event)
    assert stream.startswith(PREAMBLE) and stream.endswith(dataset)
    read = dcmread(BytesIO(stream))
    assert (read.file_meta.MediaStorageSOPInstanceUID, read.file_meta.TransferSyntaxUID, read.Modality) == (
        "1.2.3",
        ExplicitVRLittleEndian,
        "OT",
    )


@pytest.mark.parametrize(("sop_class", "sop_instance"), [("", "1.2.3"), ("1.2.3", ""), ("1.2.3", "1.2.\u00e9")])
def test_a_command_without_usable_uids_is_refused(sop_class: str, sop_instance: str) -> None:
    with pytest.raises(RejectedInput) as refused:
        file_meta_group(sop_class, sop_instance, ExplicitVRLittleEndian)
    assert refused.value.code in {"dicom.missing_uid", "dicom.invalid_uid"}
