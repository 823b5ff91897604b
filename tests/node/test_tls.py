"""DICOM TLS (PS3.15): a second port beside the plain one, with and without client certificates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from radassist.config import Settings
from radassist.db.tables import Association, Instance
from tests.conftest import free_port, wait_for_port, wait_until
from tests.node.conftest import Node
from tests.node.dcmtk import TlsPeer, echo, output, send


def _tls_node(settings: Settings, start_node: Callable[..., Node], pki: Path, *, verify: bool) -> tuple[Node, int]:
    tls_port = free_port()
    node = start_node(
        settings,
        tls_port=tls_port,
        tls_cert_file=str(pki / "server.pem"),
        tls_key_file=str(pki / "server.key"),
        tls_ca_file=str(pki / "ca.pem") if verify else "",
        tls_require_client_cert=verify,
    )
    wait_for_port(tls_port)
    return node, tls_port


def test_tls_with_client_certificates(
    migrated_settings: Settings, start_node: Callable[..., Node], pki: Path, testdata: Path
) -> None:
    node, tls_port = _tls_node(migrated_settings, start_node, pki, verify=True)
    good = TlsPeer(ca=pki / "ca.pem", key=pki / "client.key", cert=pki / "client.pem")
    assert echo(tls_port, tls=good).returncode == 0, output(echo(tls_port, tls=good))

    rogue = TlsPeer(ca=pki / "ca.pem", key=pki / "rogue.key", cert=pki / "rogue.pem")
    assert echo(tls_port, tls=rogue).returncode != 0
    anonymous = TlsPeer(ca=pki / "ca.pem")
    assert echo(tls_port, tls=anonymous).returncode != 0
    assert echo(tls_port).returncode != 0  # plain DICOM on the TLS port

    # The refused handshakes cost nothing: a good client stores, and the plain port serves beside it.
    result = send(tls_port, testdata / "pydicom-data" / "RG1_J2KR.dcm", tls=good)
    assert result.returncode == 0, output(result)
    assert echo(node.port).returncode == 0
    with node.session_factory() as session:
        assert len(session.scalars(select(Instance)).all()) == 1

    def tls_rows() -> list[Association]:
        with node.session_factory() as session:
            return list(session.scalars(select(Association).where(Association.tls.is_(True))))

    wait_until(lambda: any(r.instances_stored == 1 and r.ended_at is not None for r in tls_rows()))


def test_tls_without_client_verification_accepts_anonymous_clients(
    migrated_settings: Settings, start_node: Callable[..., Node], pki: Path
) -> None:
    _node, tls_port = _tls_node(migrated_settings, start_node, pki, verify=False)
    assert echo(tls_port, tls=TlsPeer(ca=pki / "ca.pem")).returncode == 0
    # The client still checks the server: a CA it does not trust means no association.
    assert echo(tls_port, tls=TlsPeer(ca=pki / "rogue-ca.pem")).returncode != 0
