"""Fuzz the C-STORE handler: mutated bytes of valid data sets go through ``handle_store`` exactly
as the listener calls it (a pynetdicom ``Event`` built from its own Association, C_STORE primitive
and presentation context), and the answer must be a valid status that tells the truth.

* 0x0000 only when the instance really is stored: its row exists, its file holds exactly the bytes
  that were sent, and pydicom reads it back with the command's SOP Instance UID.
* Otherwise a failure in the 0xA700 / 0xA900 / 0xC000 families, and no new file on disk.
* Never an exception, never 0x0110 (our "failed unexpectedly" path).

Bounded for CI: ``RADASSIST_FUZZ_SECONDS`` (default 25) and ``RADASSIST_FUZZ_EXAMPLES`` (default
5000), whichever ends first; raise both for a longer run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from pynetdicom.presentation import build_context
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.access import CallerPolicy
from dicom_node.associations import AssociationRegistry
from dicom_node.handlers import NodeCounters, handle_store
from dicom_node.listener_state import ListenerState
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.migrate import upgrade
from radassist.db.tables import Instance
from radassist.intake.structure import dataset_offset
from radassist.store.instances import InstanceStore
from tests.badinput.conftest import CrashWatch
from tests.dicom_factories import make_ct_study

FUZZ_SECONDS = float(os.environ.get("RADASSIST_FUZZ_SECONDS", "25"))
FUZZ_EXAMPLES = int(os.environ.get("RADASSIST_FUZZ_EXAMPLES", "5000"))


@dataclass(frozen=True)
class Seed:
    name: str
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    data: bytes
    """The data set as it arrives in P-DATA (no preamble, no file meta)."""


def _seed_from_file(name: str, path: str | Path) -> Seed:
    raw = Path(path).read_bytes()
    ds = pydicom.dcmread(BytesIO(raw), stop_before_pixels=True)
    return Seed(name, str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.file_meta.TransferSyntaxUID),
                raw[dataset_offset(raw):])


def _seeds() -> list[Seed]:
    ct = make_ct_study(series_count=1, instances_per_series=1)[0]
    buffer = BytesIO()
    ct.save_as(buffer, enforce_file_format=True)
    seeds = [_seed_from_file("synthetic_ct", _write(buffer.getvalue()))]
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm"):
        path = get_testdata_file(name, download=False)
        if path is not None:
            seeds.append(_seed_from_file(name, path))
    return seeds


def _write(data: bytes) -> Path:
    import tempfile

    handle, name = tempfile.mkstemp(suffix=".dcm")
    os.write(handle, data)
    os.close(handle)
    return Path(name)


SEEDS = _seeds()
LENGTHS = [0, 1, 2, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFE, 0xFFFFFFFF]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Seed, bytes, str, str]:
    """A seed, its mutated data set, and the command's SOP class and instance."""
    seed = draw(st.sampled_from(SEEDS))
    data = bytearray(seed.data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["overwrite", "length", "truncate", "insert", "delete", "duplicate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos : pos + len(chunk)] = chunk
        elif kind == "length":  # a 2- or 4-byte length field at a random place, little endian
            value = draw(st.sampled_from(LENGTHS))
            width = draw(st.sampled_from([2, 4]))
            data[pos : pos + width] = (value & (0xFFFF if width == 2 else 0xFFFFFFFF)).to_bytes(width, "little")
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    sop_class = draw(st.sampled_from([seed.sop_class, seed.sop_class, "1.2.840.10008.5.1.4.1.1.7"]))
    instance = draw(st.sampled_from([seed.sop_instance, seed.sop_instance, "1.2.3.4", "../x"]))
    return seed, bytes(data), sop_class, instance


def _event(assoc: Association, seed: Seed, data: bytes, sop_class: str, instance: str) -> Event:
    """What pynetdicom hands the C-STORE handler: the request primitive and the accepted context."""
    context = build_context(seed.sop_class, seed.transfer_syntax)
    context.context_id = 1
    context._as_scp = True
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = sop_class
    request.AffectedSOPInstanceUID = instance
    request.Priority = 0
    request.DataSet = BytesIO(data)
    return Event(assoc, evt.EVT_C_STORE, {"request": request, "context": context.as_tuple})


def _valid_status(status: int) -> bool:
    return status == 0x0000 or status >> 8 in (0xA7, 0xA9) or 0xC000 <= status <= 0xCFFF


@dataclass
class Target:
    settings: Settings
    sessions: sessionmaker[Session]
    store: InstanceStore
    assoc: Association


@pytest.fixture
def target(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Target]:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'fuzz.sqlite3'}")
    upgrade(settings)
    sessions = make_sessionmaker(settings)
    settings.storage.instances_dir.mkdir(parents=True, exist_ok=True)
    assoc = Association(AE(ae_title="RADASSIST"), "acceptor")
    assoc.requestor.ae_title = "FUZZER"
    assoc.acceptor.ae_title = "RADASSIST"
    try:
        yield Target(settings, sessions, InstanceStore(settings.storage.instances_dir), assoc)
    finally:
        sessions.kw["bind"].dispose()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzzed_data_sets_get_truthful_statuses(production_pydicom: None, target: Target, crash_watch: CrashWatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    counters = NodeCounters()
    shared = ListenerState(target.settings, target.store, target.sessions, counters, CallerPolicy(target.settings),
                           AssociationRegistry(1))
    started = time.monotonic()
    stats = {"examples": 0, "stored": 0, "refused": 0}
    statuses: dict[int, int] = {}

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(case=mutations())
    def run(case: tuple[Seed, bytes, str, str]) -> None:
        if time.monotonic() - started > FUZZ_SECONDS:
            return  # the time budget is spent; hypothesis finishes its remaining draws quickly
        seed, data, sop_class, instance = case
        before = set(p for p in target.store.root.rglob("*") if p.is_file())
        status = handle_store(_event(target.assoc, seed, data, sop_class, instance), shared)
        stats["examples"] += 1
        statuses[status] = statuses.get(status, 0) + 1
        assert isinstance(status, int) and _valid_status(status), f"status 0x{status:04X}"
        assert crash_watch.take() == []
        after = set(p for p in target.store.root.rglob("*") if p.is_file())
        assert not [p for p in after if p.suffix != ".dcm"], "a temporary file was left behind"
        if status == 0x0000:
            stats["stored"] += 1
            with target.sessions() as session:
                row = session.scalars(select(Instance).where(Instance.sop_instance_uid == instance)).first()
            assert row is not None, "Success without a row"
            path = target.store.path(row.path)
            stored = path.read_bytes()
            assert stored[dataset_offset(stored):] == data, "the stored file is not what was sent"
            assert str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID) == instance
        else:
            stats["refused"] += 1
            assert after == before, "a refused instance left a file"

    run()
    elapsed = time.monotonic() - started
    with capsys.disabled():
        top = ", ".join(f"0x{k:04X}x{v}" for k, v in sorted(statuses.items()))
        print(f"\nbadinput C-STORE fuzz: {stats['examples']} examples in {elapsed:.1f}s "
              f"({stats['stored']} stored, {stats['refused']} refused; {top}), 0 crashes")
    assert stats["examples"] > 0
