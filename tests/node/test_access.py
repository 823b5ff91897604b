"""Who may send: the allowlist per called AE title, refusals at association, the association log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from radassist.config import AllowedCaller, PipelineSettings, Settings
from radassist.db.tables import Association, Instance, Study
from tests.node.conftest import Node
from tests.node.dcmtk import echo, output, send

CR = "RG1_J2KR.dcm"


def _associations(node: Node) -> list[Association]:
    with node.session_factory() as session:
        return list(session.scalars(select(Association).order_by(Association.started_at)))


def test_unknown_caller_is_refused_at_association(node: Node, testdata: Path) -> None:
    result = send(node.port, testdata / "pydicom-data" / CR, calling_ae="STRANGER")
    assert result.returncode != 0
    assert "Rejected Permanent" in output(result) and "Calling AE Title Not Recognized" in output(result)
    with node.session_factory() as session:
        assert session.scalars(select(Instance)).all() == []
    (row,) = _associations(node)
    assert (row.calling_ae_title, row.called_ae_title, row.peer_host) == ("STRANGER", "RADASSIST", "127.0.0.1")
    assert (row.outcome, row.reason, row.instances_stored) == ("rejected", "caller.unknown", 0)
    assert row.ended_at is not None
    assert node.counters.associations_refused == 1
    assert echo(node.port).returncode == 0  # the known caller still gets in


def test_known_caller_is_accepted_and_its_association_logged(node: Node, testdata: Path) -> None:
    result = send(node.port, testdata / "pydicom-data" / CR, testdata / "pydicom-data" / "693_J2KR.dcm")
    assert result.returncode == 0, output(result)
    from tests.conftest import wait_until

    wait_until(lambda: _associations(node) and _associations(node)[0].ended_at is not None)
    (row,) = _associations(node)
    assert (row.calling_ae_title, row.called_ae_title, row.peer_host, row.tls) == (
        "MODALITY",
        "RADASSIST",
        "127.0.0.1",
        False,
    )
    assert (row.outcome, row.reason, row.instances_stored, row.instances_failed) == ("released", None, 2, 0)
    assert row.bytes_stored > 0 and row.ended_at >= row.started_at


def test_known_title_from_another_network_is_refused(
    migrated_settings: Settings, start_node: Callable[..., Node]
) -> None:
    node = start_node(migrated_settings, allowed_callers=(AllowedCaller(ae_title="MODALITY", network="10.0.0.0/8"),))
    result = echo(node.port)
    assert "Calling AE Title Not Recognized" in output(result)
    (row,) = _associations(node)
    assert row.reason == "caller.host_not_allowed"


def test_no_allowlist_refuses_everyone_unless_any_caller_is_allowed(
    migrated_settings: Settings, start_node: Callable[..., Node]
) -> None:
    closed = start_node(migrated_settings, allowed_callers=())
    assert "Calling AE Title Not Recognized" in output(echo(closed.port))
    opened = start_node(migrated_settings, allowed_callers=(), allow_any_caller=True)
    assert echo(opened.port, calling_ae="ANYONE").returncode == 0


def test_several_ae_titles_on_one_port_each_with_its_callers(
    migrated_settings: Settings, start_node: Callable[..., Node], testdata: Path
) -> None:
    settings = migrated_settings.model_copy(
        update={"pipelines": (PipelineSettings(ae_title="CT_AI", model_name="other/model"),)}
    )
    node = start_node(
        settings,
        allowed_callers=(
            AllowedCaller(ae_title="MODALITY", network="127.0.0.0/8"),
            AllowedCaller(ae_title="CT_ONLY", network="127.0.0.1", called_ae_titles=("CT_AI",)),
        ),
    )
    assert echo(node.port, called_ae="CT_AI").returncode == 0
    assert echo(node.port, calling_ae="CT_ONLY", called_ae="CT_AI").returncode == 0
    refused = echo(node.port, calling_ae="CT_ONLY", called_ae="RADASSIST")
    assert "Calling AE Title Not Recognized" in output(refused)
    unknown = echo(node.port, called_ae="NOT_OURS")
    assert "Called AE Title Not Recognized" in output(unknown)

    assert send(node.port, testdata / "pydicom-data" / CR, called_ae="CT_AI").returncode == 0
    with node.session_factory() as session:
        study = session.scalars(select(Study)).one()
        assert study.called_ae_title == "CT_AI"
    reasons = sorted(str(r.reason) for r in _associations(node) if r.outcome == "rejected")
    assert reasons == ["called_ae.unknown", "caller.unknown"]


def test_aborted_association_keeps_what_was_acknowledged(node: Node, testdata: Path) -> None:
    import pydicom
    from pynetdicom import AE

    from tests.conftest import wait_until

    ds = pydicom.dcmread(testdata / "pydicom-data" / "liver.dcm")
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="RADASSIST")
    assert assoc.is_established
    assert int(assoc.send_c_store(ds).Status) == 0x0000
    assoc.abort()  # the sender dies after the acknowledgement

    wait_until(lambda: _associations(node)[0].outcome == "aborted")
    (row,) = _associations(node)
    assert row.instances_stored == 1 and row.ended_at is not None
    with node.session_factory() as session:
        (instance,) = session.scalars(select(Instance)).all()
    assert node.store.path(instance.path).stat().st_size == instance.size_bytes


def test_an_admin_pause_refuses_the_caller_transiently_until_resumed(node: Node) -> None:
    from radassist.actions.intake import pause_intake, resume_intake
    from tests.conftest import wait_until

    with node.session_factory() as session:
        assert pause_intake(session, "MODALITY", "admin").ok
        session.commit()

    def refused() -> bool:
        return "Rejected Transient" in output(echo(node.port))

    wait_until(refused, timeout=10)  # the listener re-reads pauses every couple of seconds
    assert _associations(node)[-1].reason == "intake.paused"
    with node.session_factory() as session:
        assert resume_intake(session, "MODALITY", "admin").ok
        session.commit()
    wait_until(lambda: echo(node.port).returncode == 0, timeout=10)
