"""C-STORE of the draft SR to dcmtk's storescp (and to a pynetdicom SCP answering chosen statuses)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import EnhancedSRStorage, Verification  # type: ignore[attr-defined]

from radassist.errors import PermanentFailure, TransientFailure
from radassist.pacs.cstore import classify_status, echo, store_sr
from radassist.sr import build_draft_sr, sr_uids_for_job
from tests.conftest import free_port, wait_for_port
from tests.dicom_factories import make_ct_study
from tests.peers import STORESCP, storescp

CALLING = "RADASSIST"


@pytest.fixture
def sr_file(tmp_path: Path) -> Path:
    study = make_ct_study(series_count=1, instances_per_series=2)
    series_uid, sop_uid = sr_uids_for_job(uuid.uuid4())
    sr = build_draft_sr(
        study,
        findings="Lungs are clear.",
        impression="No acute disease.",
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        model_name="tiny-test-model",
        model_revision="1",
        software_version="0.1.0",
    )
    path = tmp_path / "draft-sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    return path


@contextmanager
def status_scp(status: int) -> Iterator[int]:
    """A pynetdicom Storage SCP that answers every C-STORE with ``status``."""
    ae = AE(ae_title="STATUSPACS")
    ae.add_supported_context(EnhancedSRStorage, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda event: status)]
    )
    try:
        yield port
    finally:
        server.shutdown()


def test_store_sr_reaches_storescp(sr_file: Path, tmp_path: Path) -> None:
    expected = pydicom.dcmread(sr_file).SOPInstanceUID
    with storescp(tmp_path / "pacs", ae_title="TESTPACS") as pacs:
        store_sr(sr_file, ae_title="TESTPACS", host="127.0.0.1", port=pacs.port, calling_ae_title=CALLING)
        received = pacs.received()
    assert len(received) == 1
    stored = pydicom.dcmread(received[0])
    assert stored.SOPInstanceUID == expected
    assert stored.SOPClassUID == EnhancedSRStorage
    assert stored.PreliminaryFlag == "PRELIMINARY"


def test_echo_against_storescp(tmp_path: Path) -> None:
    with storescp(tmp_path / "pacs", ae_title="TESTPACS") as pacs:
        assert echo(ae_title="TESTPACS", host="127.0.0.1", port=pacs.port, calling_ae_title=CALLING) is True
    assert (
        echo(ae_title="TESTPACS", host="127.0.0.1", port=free_port(), calling_ae_title=CALLING, timeout_s=2)
        is False
    )


def test_no_pacs_listening_is_transient(sr_file: Path) -> None:
    with pytest.raises(TransientFailure) as excinfo:
        store_sr(
            sr_file,
            ae_title="TESTPACS",
            host="127.0.0.1",
            port=free_port(),
            calling_ae_title=CALLING,
            timeout_s=3,
        )
    assert excinfo.value.code == "pacs.unreachable"


def test_refused_association_is_transient(sr_file: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [STORESCP, "--refuse", "--output-directory", str(tmp_path), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        with pytest.raises(TransientFailure) as excinfo:
            store_sr(
                sr_file,
                ae_title="TESTPACS",
                host="127.0.0.1",
                port=port,
                calling_ae_title=CALLING,
                timeout_s=5,
            )
    finally:
        proc.terminate()
        proc.wait(10)
    # storescp closes the socket right after its A-ASSOCIATE-RJ; now and then pynetdicom sees the
    # close first and reports an abort. Either way the delivery is retried.
    assert excinfo.value.code in ("pacs.rejected", "pacs.unreachable")


def test_wrong_called_ae_title_is_rejected(sr_file: Path) -> None:
    ae = AE(ae_title="REALPACS")
    ae.require_called_aet = True
    ae.add_supported_context(EnhancedSRStorage)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    try:
        with pytest.raises(TransientFailure) as excinfo:
            store_sr(sr_file, ae_title="WRONGPACS", host="127.0.0.1", port=port, calling_ae_title=CALLING)
    finally:
        server.shutdown()
    assert excinfo.value.code == "pacs.rejected"


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (0xA700, TransientFailure, "pacs.refused.a700"),
        (0xA701, TransientFailure, "pacs.refused.a700"),
        (0xA900, PermanentFailure, "pacs.refused.a900"),
        (0xC001, PermanentFailure, "pacs.refused.c001"),
    ],
)
def test_failure_statuses_map_to_retry_or_fail(
    sr_file: Path, status: int, error: type[Exception], code: str
) -> None:
    with status_scp(status) as port, pytest.raises(error) as excinfo:
        store_sr(sr_file, ae_title="STATUSPACS", host="127.0.0.1", port=port, calling_ae_title=CALLING)
    assert excinfo.value.code == code  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [0x0000, 0xB000, 0xB007])
def test_success_and_warnings_count_as_stored(sr_file: Path, status: int) -> None:
    with status_scp(status) as port:
        store_sr(sr_file, ae_title="STATUSPACS", host="127.0.0.1", port=port, calling_ae_title=CALLING)


def test_sop_class_not_offered_by_pacs_is_permanent(sr_file: Path) -> None:
    ae = AE(ae_title="ECHOONLY")
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    try:
        with pytest.raises(PermanentFailure) as excinfo:
            store_sr(sr_file, ae_title="ECHOONLY", host="127.0.0.1", port=port, calling_ae_title=CALLING)
    finally:
        server.shutdown()
    assert excinfo.value.code == "pacs.context.rejected"


def test_unreadable_file_is_permanent(tmp_path: Path) -> None:
    bogus = tmp_path / "not-dicom.dcm"
    bogus.write_bytes(b"hello")
    with pytest.raises(PermanentFailure) as excinfo:
        store_sr(bogus, ae_title="X", host="127.0.0.1", port=free_port(), calling_ae_title=CALLING)
    assert excinfo.value.code == "pacs.file.unreadable"


def test_classify_status_table() -> None:
    assert classify_status(0x0000) == "success"
    assert classify_status(0xB006) == "warning"
    assert classify_status(0xA7FF) == "transient"
    assert classify_status(0x0110) == "transient"
    assert classify_status(0xA9FF) == "permanent"
    assert classify_status(0xCFFF) == "permanent"
    assert classify_status(0x0122) == "permanent"


# --- DICOM TLS (PS3.15 B.1): dcmtk storescp with +tls, mutual authentication ---------------------

OPENSSL = "/usr/bin/openssl"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, all PEM."""
    d = tmp_path / "pki"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=RadAssist test CA", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt",
             "-days", "2", "-subj", "/CN=Some other CA", cwd=d)
    return {name: d / name for name in ("ca.crt", "server.key", "server.crt", "client.key", "client.crt", "other.crt")}


@contextmanager
def tls_storescp(folder: Path, files: dict[str, Path]) -> Iterator[int]:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [STORESCP, "--aetitle", "TLSPACS", "--output-directory", str(folder), "+tls", str(files["server.key"]),
         str(files["server.crt"]), "-pw", "+cf", str(files["ca.crt"]), "-rc", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_store_sr_over_tls_with_client_certificate(sr_file: Path, tmp_path: Path, tls_files: dict[str, Path]) -> None:
    from radassist.config import DicomDestination
    from radassist.pacs.targets import send_sr_file, test_connection

    with tls_storescp(tmp_path / "tlspacs", tls_files) as port:
        dest = DicomDestination(
            kind="dicom", name="tls", ae_title="TLSPACS", host="127.0.0.1", port=port, tls=True,
            tls_ca_file=str(tls_files["ca.crt"]), tls_cert_file=str(tls_files["client.crt"]),
            tls_key_file=str(tls_files["client.key"]),
        )
        test_connection(dest, calling_ae_title=CALLING)
        send_sr_file(sr_file, dest, calling_ae_title=CALLING)
        received = sorted(p for p in (tmp_path / "tlspacs").rglob("*") if p.is_file())
        assert [pydicom.dcmread(p).SOPInstanceUID for p in received] == [pydicom.dcmread(sr_file).SOPInstanceUID]

        # A server whose certificate we do not trust is never sent anything.
        untrusted = dest.model_copy(update={"tls_ca_file": str(tls_files["other.crt"])})
        with pytest.raises(TransientFailure) as excinfo:
            send_sr_file(sr_file, untrusted, calling_ae_title=CALLING)
        assert excinfo.value.code in ("pacs.tls", "pacs.unreachable")
        assert len(sorted(p for p in (tmp_path / "tlspacs").rglob("*") if p.is_file())) == 1

    broken = dest.model_copy(update={"tls_cert_file": str(tmp_path / "missing.crt")})
    with pytest.raises(PermanentFailure) as perm:
        send_sr_file(sr_file, broken, calling_ae_title=CALLING)
    assert perm.value.code == "pacs.tls.config"
