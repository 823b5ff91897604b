"""One flush per group ends with the disk's cache flushed after every write it made.

``syncfs`` has Linux flush the disk's cache and then write the block device's last dirty buffers.
On ext4 without a journal (this project's machines) one of those is the new file's inode, rewritten
when its blocks are converted from unwritten to written: without a cache flush after it, a power
cut could keep a file that reads as zeros for an instance already answered Success.  A power cut
cannot be pulled here, so the test reads the order of the block layer's requests instead, in a
tracefs instance of its own (root with tracefs mounted; ``.ci/run`` mounts it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from radassist.errors import ConfigError
from radassist.store import filesystem_sync
from radassist.store.filesystem_sync import FilesystemSync
from radassist.store.instances import InstanceStore

TRACEFS = Path("/sys/kernel/tracing")
EVENTS = ("block/block_rq_issue", "block/block_rq_complete")

_LINE = re.compile(
    r"-(?P<tid>\d+)\s+\[\d+\]\s+\S+\s+(?P<time>[\d.]+): (?P<event>block_rq_issue|block_rq_complete): "
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
    """A tracefs instance recording block requests, removed afterwards; skips where there is none."""
    instances = TRACEFS / "instances"
    if not (instances.is_dir() and os.access(instances, os.W_OK)):
        pytest.skip("needs tracefs mounted at /sys/kernel/tracing, writable (root)")
    instance = instances / f"radassist-test-{os.getpid()}"
    instance.mkdir()
    try:
        for event in EVENTS:
            (instance / "events" / event / "enable").write_text("1")
        yield instance
    finally:
        for event in EVENTS:
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
