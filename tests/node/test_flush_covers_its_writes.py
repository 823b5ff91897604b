"""What the durable write puts on the disk before it returns, read from the block layer's trace.

``syncfs`` has Linux flush the disk's cache and then write the block device's last dirty buffers.
On ext4 without a journal (this project's machines) one of those is the new file's inode, rewritten
when its blocks are converted from unwritten to written: without a cache flush after it, a power
cut could keep a file that reads as zeros for an instance already answered Success.  With
``each-file`` on such a file system, the folder's fsync after the link does not write the file's
inode, whose link count the link just raised from 0 (:mod:`radassist.store.journal`).  A power cut
cannot be pulled here, so the tests read the order of the block layer's requests instead, in a
tracefs instance of their own (root with tracefs mounted; ``.ci/run`` mounts it).  A small instance
made durable in its commit (``[storage] in_commit_max_bytes``) is checked the same way: its commit's
writes are covered by a completed cache flush before the Success may follow.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.group_commit import GroupCommit
from radassist.db.base import utcnow
from radassist.db.engine import write_turn
from radassist.errors import ConfigError
from radassist.intake.record import record_instance
from radassist.intake.record_sqlite import new_instance
from radassist.store import filesystem_sync
from radassist.store.filesystem_sync import FilesystemSync
from radassist.store.instances import InstanceStore
from radassist.store.journal import has_journal, journals_metadata
from tests.node.conftest import HeldFlush
from tests.unit.test_completion import header

TRACEFS = Path("/sys/kernel/tracing")
EVENTS = ("block/block_rq_issue", "block/block_rq_complete", "block/block_dirty_buffer", "ext4/ext4_mark_inode_dirty")

_EVENT = r"-(?P<tid>\d+)\s+\[\d+\]\s+\S+\s+(?P<time>[\d.]+): "
"""What tracefs writes before each event: the task and its thread id, the CPU, flags, the time."""
_LINE = re.compile(
    _EVENT + r"(?P<event>block_rq_issue|block_rq_complete): "
    r"\d+,\d+ (?P<rwbs>\S+) (?:\d+ )?\(\) (?P<sector>\d+) \+ (?P<sectors>\d+)"
)


@dataclass(frozen=True)
class Request:
    """One block request event: issued or completed."""

    event: str
    tid: int
    time: float
    rwbs: str
    sector: int
    sectors: int

    @property
    def is_flush(self) -> bool:
        return self.rwbs.startswith("F")

    @property
    def is_write(self) -> bool:
        return "W" in self.rwbs and self.sectors > 0


def _requests(trace: str) -> list[Request]:
    return [
        Request(m["event"], int(m["tid"]), float(m["time"]), m["rwbs"], int(m["sector"]), int(m["sectors"]))
        for m in map(_LINE.search, trace.splitlines())
        if m is not None
    ]


@pytest.fixture
def block_trace() -> Iterator[Path]:
    """A tracefs instance recording block requests and ext4's inode updates, removed afterwards; skips
    where there is none."""
    instances = TRACEFS / "instances"
    if not (instances.is_dir() and os.access(instances, os.W_OK)):
        pytest.skip("needs tracefs mounted at /sys/kernel/tracing, writable (root)")
    instance = instances / f"radassist-test-{os.getpid()}"
    instance.mkdir()
    events = [event for event in EVENTS if (instance / "events" / event / "enable").exists()]
    try:
        for event in events:
            (instance / "events" / event / "enable").write_text("1")
        yield instance
    finally:
        for event in events:
            (instance / "events" / event / "enable").write_text("0")
        instance.rmdir()


def _uncovered(requests: list[Request], tid: int) -> list[Request]:
    """The writes ``tid`` issued whose completion no completed cache flush follows."""
    completions = [r for r in requests if r.event == "block_rq_complete"]
    last_flush = max((r.time for r in completions if r.is_flush), default=-1.0)
    uncovered = []
    for issued in (r for r in requests if r.event == "block_rq_issue" and r.tid == tid and r.is_write):
        done = next(
            (c.time for c in completions
             if c.time >= issued.time and (c.sector, c.sectors) == (issued.sector, issued.sectors)),
            None,
        )  # fmt: skip
        if done is None or done > last_flush:
            uncovered.append(issued)
    return uncovered


def test_the_flush_after_a_new_file_ends_with_the_disk_cache_flushed(block_trace: Path, tmp_path: Path) -> None:
    store = InstanceStore(tmp_path / "instances")
    store.write(b"warm-up", "1.2", "1.2.3", "1.2.3.0")  # the study's folders exist, as mid-study
    flush = FilesystemSync([tmp_path])
    flush.sync()
    store.write(os.urandom(20_000), "1.2", "1.2.3", "1.2.3.1", sync=False)  # as the group commit writes it
    (block_trace / "trace").write_text("")

    flush.sync()

    requests = _requests((block_trace / "trace").read_text())
    ours = [r for r in requests if r.event == "block_rq_issue" and r.tid == os.getpid() and r.is_write]
    if not ours:
        pytest.skip("the instance folder is on no block device (tmpfs?): no write to order")
    assert any(r.is_flush for r in requests), "the flush sent no cache flush to the disk"
    assert _uncovered(requests, os.getpid()) == []


def test_a_folder_that_refuses_fsync_keeps_the_per_file_syncs(tmp_path: Path) -> None:
    """Every flush ends with a folder's ``fsync``: a file system that refuses it (``/proc`` here, with
    EINVAL, where ``syncfs`` itself succeeds) is found at start, not at the first instance."""
    refusing = Path("/proc/self")
    assert filesystem_sync.choose("auto", refusing, tmp_path) is None
    with pytest.raises(ConfigError, match="cannot open or fsync"):
        filesystem_sync.choose("filesystem", refusing, tmp_path)
    assert filesystem_sync.choose("auto", tmp_path, tmp_path) is not None


_LINKED = re.compile(_EVENT + r"ext4_mark_inode_dirty: dev \S+ ino (?P<ino>\d+) caller __ext4_link")
_DIRTIED = re.compile(_EVENT + r"block_dirty_buffer: \S+ sector=(?P<block>\d+)")


def _link(trace: str, inode: int) -> tuple[float, int] | None:
    """When ``inode`` was linked, and the file system block holding it (the next buffer the linking
    thread dirtied)."""
    linked: re.Match[str] | None = None
    for line in trace.splitlines():
        if linked is None:
            if (m := _LINKED.search(line)) and int(m["ino"]) == inode:
                linked = m
        elif (m := _DIRTIED.search(line)) and m["tid"] == linked["tid"]:
            return float(linked["time"]), int(m["block"])
    return None


def test_each_file_makes_the_new_link_count_durable_before_it_returns(block_trace: Path, tmp_path: Path) -> None:
    if journals_metadata(tmp_path):
        pytest.skip("a journaled file system commits the link with its folder entry: nothing to order here")
    store = InstanceStore(tmp_path / "instances")
    for n in range(60):  # the new file's inode then lies in another inode-table block than its folder's
        store.write(b"earlier", "1.2", "1.2.3", f"1.2.3.{n}")
    (block_trace / "trace").write_text("")

    stored = store.write(os.urandom(20_000), "1.2", "1.2.3", "1.2.3.999")

    trace = (block_trace / "trace").read_text()
    path = tmp_path / "instances" / stored.relpath
    link = _link(trace, path.stat().st_ino)
    if link is None:
        pytest.skip("no ext4 link event in the trace (another file system, or no ext4 events)")
    linked_at, block = link
    device = path.stat().st_dev
    start_file = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}/start")
    per_block = os.statvfs(path).f_bsize // 512
    first = block * per_block + (int(start_file.read_text()) if start_file.exists() else 0)
    requests = _requests(trace)
    last_flush = max(r.time for r in requests if r.event == "block_rq_complete" and r.is_flush)
    written_since_link = [
        c for c in requests
        if c.event == "block_rq_complete" and c.is_write and linked_at < c.time <= last_flush
        and c.sector <= first and first + per_block <= c.sector + c.sectors
    ]  # fmt: skip
    assert written_since_link, "the file's inode, with its new link, was not written before the last flush"


@pytest.mark.parametrize(
    ("fstype", "device", "journals", "journaled"),
    [
        ("ext4", "vda", [], False),  # this project's VMs
        ("ext4", "vda", ["vda-8"], True),
        ("ext4", "vda1", ["vda-8"], False),  # another device's journal
        ("ext3", "dm-0", ["dm-0-8", "sdb1-8"], True),
        ("ext2", "sdb", [], False),
        ("xfs", "vda", [], True),
        ("btrfs", None, [], True),
        (None, None, [], False),  # unknown: the extra fsync costs a flush, never an instance
    ],
)
def test_ext_file_systems_without_a_jbd2_journal_need_the_extra_fsync(
    fstype: str | None, device: str | None, journals: list[str], journaled: bool
) -> None:
    assert has_journal(fstype, device, journals) is journaled


def test_a_small_instance_durable_in_its_commit_ends_with_the_disk_cache_flushed(
    block_trace: Path, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    """``[storage] in_commit_max_bytes``: the Success follows the commit that holds the instance's
    bytes, with no flush of its file; every write that commit made must be covered by a completed
    cache flush before it returns (SQLite's WAL ``fdatasync`` with ``synchronous=FULL``)."""
    device = os.stat(tmp_path).st_dev
    if not Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").exists():
        pytest.skip("the database is on no block device (tmpfs?): no write to order")
    store = InstanceStore(tmp_path / "data" / "instances")
    store.root.mkdir(parents=True)
    held = HeldFlush([store.root])  # the background flush waits until the test is over: the commit alone
    group = GroupCommit(factory, held, in_commit_max_bytes=4096)
    try:
        first = header("1.2.9", "1.2.9.1")
        with write_turn(factory), factory() as session:  # the study and series become known
            stored = store.write(b"first", "1.2.9", first.series_instance_uid, first.sop_instance_uid)
            record_instance(session, first, stored, calling_ae="MODALITY", called_ae="RADASSIST", now=utcnow())
            session.commit()
        second, data = header("1.2.9", "1.2.9.2"), os.urandom(2_000)
        stored = store.write(data, "1.2.9", second.series_instance_uid, second.sop_instance_uid, sync=False)
        item = new_instance(
            group.database, second, stored, patient_key=None, calling_ae="MODALITY", reopen_study=True,
            now=utcnow(), data=data,
        )  # fmt: skip
        assert item is not None
        (block_trace / "trace").write_text("")

        assert group.record(item)  # one association alone: this thread leads, writes and commits

        requests = _requests((block_trace / "trace").read_text())
        tid = threading.get_native_id()
        assert any(r.event == "block_rq_issue" and r.tid == tid and r.is_write for r in requests), (
            "the commit wrote nothing to the disk before it returned"
        )
        assert group.background is not None and group.background.flushed_through == 0, "the file is not flushed yet"
        assert any(r.is_flush for r in requests), "the commit sent no cache flush to the disk"
        assert _uncovered(requests, tid) == []
    finally:
        held.allowed.set()
        group.close()
