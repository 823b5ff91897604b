"""Who may send DICOM: the cases tests/node does not already prove.

Already covered in tests/node (not repeated here):
- test_access.py: an unknown calling AE title is refused at association (and logged, and counted);
  a known title from a host outside its network is refused; no allowlist refuses everyone; an
  unknown called AE title is refused; a caller allowed for one called AE title only is refused
  on another.
- test_tls.py: with client certificates required, a certificate from an untrusted CA, no
  certificate at all and plain DICOM on the TLS port are refused; a trusted client stores.

Added here: a self-signed client certificate (issued by no CA, the commonest forgery); and that the
allowlist still applies on the TLS port, so a trusted certificate does not admit an unknown calling
AE title or a known title from a host outside its network.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from radassist.config import AllowedCaller, Settings
from radassist.db.tables import Association, Instance
from tests.conftest import free_port, wait_for_port
from tests.node.conftest import OPENSSL, Node
from tests.node.dcmtk import TlsPeer, echo, output, send

CR = "RG1_J2KR.dcm"


@pytest.fixture
def self_signed(pki: Path) -> TlsPeer:
    """A client that made its own certificate (CN=MODALITY, right key usage, signed by itself)."""
    if not (pki / "selfsigned.pem").exists():
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "selfsigned.key",
                        "-out", "selfsigned.pem", "-days", "2", "-subj", "/CN=MODALITY"],
                       cwd=pki, check=True, capture_output=True, timeout=60)
    return TlsPeer(ca=pki / "ca.pem", key=pki / "selfsigned.key", cert=pki / "selfsigned.pem")


def _tls_node(settings: Settings, start_node: Callable[..., Node], pki: Path, **updates: object) -> tuple[Node, int]:
    tls_port = free_port()
    node = start_node(settings, tls_port=tls_port, tls_cert_file=str(pki / "server.pem"),
                      tls_key_file=str(pki / "server.key"), tls_ca_file=str(pki / "ca.pem"),
                      tls_require_client_cert=True, **updates)
    wait_for_port(tls_port)
    return node, tls_port


def _stored(node: Node) -> int:
    with node.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(Instance)) or 0)


def test_self_signed_client_certificate_is_refused(
    sqlite_settings: Settings, start_node: Callable[..., Node], pki: Path, self_signed: TlsPeer, testdata: Path
) -> None:
    node, tls_port = _tls_node(sqlite_settings, start_node, pki)
    refused = send(tls_port, testdata / "pydicom-data" / CR, tls=self_signed)
    assert refused.returncode != 0
    assert _stored(node) == 0 and node.files() == []
    good = TlsPeer(ca=pki / "ca.pem", key=pki / "client.key", cert=pki / "client.pem")
    assert echo(tls_port, tls=good).returncode == 0, output(echo(tls_port, tls=good))  # the port itself works
    with node.session_factory() as session:  # the handshake failed before any association began
        assert session.scalars(select(Association).where(Association.calling_ae_title == "MODALITY",
                                                         Association.instances_stored > 0)).all() == []


def test_a_trusted_certificate_does_not_bypass_the_allowlist(
    sqlite_settings: Settings, start_node: Callable[..., Node], pki: Path, testdata: Path
) -> None:
    node, tls_port = _tls_node(
        sqlite_settings, start_node, pki,
        allowed_callers=(AllowedCaller(ae_title="MODALITY", network="127.0.0.1/32"),
                         AllowedCaller(ae_title="FARAWAY", network="10.0.0.0/8")),
    )
    good = TlsPeer(ca=pki / "ca.pem", key=pki / "client.key", cert=pki / "client.pem")
    for calling_ae in ("STRANGER", "FARAWAY"):
        result = send(tls_port, testdata / "pydicom-data" / CR, calling_ae=calling_ae, tls=good)
        assert result.returncode != 0
        assert "Calling AE Title Not Recognized" in output(result), output(result)
    assert _stored(node) == 0
    with node.session_factory() as session:
        reasons = sorted(str(r.reason) for r in session.scalars(select(Association).where(Association.tls.is_(True))))
    assert reasons == ["caller.host_not_allowed", "caller.unknown"]
    result = send(tls_port, testdata / "pydicom-data" / CR, tls=good)  # the allowed caller, same certificate
    assert result.returncode == 0, output(result)
    assert _stored(node) == 1
