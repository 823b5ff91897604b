"""Where one instance's round goes in our listener, part by part, beside Orthanc's whole round.

    .venv/bin/python bench/listener_phases.py [--kind small|ct] [--instances 3000] [--no-orthanc]

Runs the real listener (``python -m dicom_node``, SQLite, one process, the fast path) with a few of
its functions wrapped in timers (``bench/timed_parts.py``), sends ``--instances`` of the bench's studies
(``bench/ingest.py``) over one association with dcmtk's storescu, and prints the median of each part:
the round (from one C-STORE handler's start to the next), the time outside the handler (pynetdicom,
the network, storescu), the header, the file, the rows, the flush and the rest of the handler.  A
small instance is made durable in its commit (``[storage] in_commit_max_bytes``): its rows' part
then includes the WAL's sync, its flush part is nil, and the files' flush in the background is
printed on its own line, outside the round.  With
it, per instance: the listener's CPU (``/proc``, user and system) and what the disk was asked to do
(``/sys/dev/block``: write requests, bytes, cache flushes).  Orthanc's round is the same instances
sent to a fresh Orthanc, whole (``--no-orthanc`` leaves it out).

``bench/ingest.py`` says how fast; this says where the time goes, so a change can be aimed at its
largest part.  The wrappers add about a microsecond per call.  The first 50 instances warm up and
are not counted.  Like ``bench/ingest.py`` it prints what a file create costs at the start: minutes
after many files were deleted (the previous run's), the file and flush parts pay for it.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cpu_use import process_seconds
from ingest import create_cost_us, generate, send, start_orthanc, start_ours
from timed_parts import Call, Wrapped, hook_environment, recorded_calls, refuse_unwrappable

WRAPPED: tuple[Wrapped, ...] = (
    Wrapped("dicom_node.storage", "", "handle_store", "handler"),  # its starts mark the rounds
    Wrapped("dicom_node.storage", "", "_parse", "header"),
    Wrapped("radassist.store.instances", "InstanceStore", "write", "file"),
    Wrapped("dicom_node.group_commit", "GroupCommit", "_commit", "rows and flush"),
    Wrapped("dicom_node.group_commit", "GroupCommit", "_flush", "flush"),
    Wrapped("dicom_node.background_flush", "BackgroundFlush", "_flush_through", "background flush"),
)
"""What is timed.  Some are private names: :func:`timed_parts.unwrappable` says which went missing
before the listener starts."""

_WARM_UP = 50


@dataclass(frozen=True)
class Disk:
    """A block device's counters (``/sys/dev/block/MAJ:MIN/stat``, Documentation/admin-guide/iostats)."""

    writes: int
    sectors: int
    flushes: int

    @classmethod
    def of(cls, folder: Path) -> Disk | None:
        device = os.stat(folder).st_dev
        try:
            fields = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}/stat").read_text().split()
        except OSError:
            return None  # not a block device (tmpfs, overlay): nothing to count
        return cls(int(fields[4]), int(fields[6]), int(fields[15]) if len(fields) > 15 else 0)


def medians_ms(calls: list[Call]) -> dict[str, float]:
    """Each part's median call, and the round's: from one handler's start to the next."""
    durations: dict[str, list[int]] = collections.defaultdict(list)
    for call in calls:
        durations[call.part].append(call.end - call.start)
    starts = [call.start for call in calls if call.part == "handler"]
    durations["round"] = [later - earlier for earlier, later in itertools.pairwise(starts)]
    return {part: statistics.median(values) / 1e6 for part, values in durations.items() if values}


@dataclass(frozen=True)
class Ours:
    phases: dict[str, float]
    """Medians, ms."""
    mean_round: float
    """The counted instances' sending time over their number, ms: comparable with Orthanc's."""
    user: float
    system: float
    """CPU per instance, ms."""
    disk_before: Disk | None
    disk_after: Disk | None


def ours(work: Path, files: list[Path]) -> Ours:
    """Our listener, timed part by part while it receives ``files`` on one association."""
    timings = work / "timings"
    proc, port = start_ours(work, "", 1, env_extra=hook_environment(timings, WRAPPED))
    try:
        send(port, files[:_WARM_UP], 1, True)
        subprocess.run(["sync"], check=True)  # the warm-up's and the generator's writes are not ours to pay
        counted = files[_WARM_UP:]
        cpu_before, disk_before, start = process_seconds(proc.pid), Disk.of(work), time.monotonic_ns()
        seconds = send(port, counted, 1, True)
        cpu_after, disk_after, end = process_seconds(proc.pid), Disk.of(work), time.monotonic_ns()
        time.sleep(1.0)  # the listener writes its timings down twice a second
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    user, system = ((after - before) * 1e3 / len(counted) for before, after in zip(cpu_before, cpu_after, strict=True))
    phases = medians_ms(recorded_calls(timings, start, end))
    return Ours(phases, seconds * 1e3 / len(counted), user, system, disk_before, disk_after)


def orthanc_round_ms(work: Path, files: list[Path]) -> float:
    proc, port = start_orthanc(work, True)
    try:
        send(port, files[:_WARM_UP], 1, True)
        subprocess.run(["sync"], check=True)
        return send(port, files[_WARM_UP:], 1, True) * 1e3 / (len(files) - _WARM_UP)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def report(phases: dict[str, float]) -> list[tuple[str, float]]:
    """The parts of one round, in ms; what is not measured directly is what is left of its whole."""
    rows_and_flush = phases.get("rows and flush", 0.0)
    flush = phases.get("flush", 0.0) if rows_and_flush else 0.0
    handler = phases["handler"]
    parts = [("round (one handler's start to the next)", phases["round"]),
             ("outside the handler: pynetdicom, the network, the sender", phases["round"] - handler),
             ("header walk and parse", phases.get("header", 0.0)),
             ("the file: create, write, link", phases.get("file", 0.0))]
    if rows_and_flush:  # SQLite with the group commit; elsewhere the rows are inside "the rest"
        parts += [("the rows: one transaction and its commit", rows_and_flush - flush),
                  ("the flush (syncfs, then the folder's fsync)", flush)]
    named = sum(value for _, value in parts[2:])
    parts.append(("the rest of the handler", handler - named))
    if "background flush" in phases:  # small instances durable in their commit: not in the round
        parts.append(("a background flush of the files (off the round)", phases["background flush"]))
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("small", "ct"), default="small")
    parser.add_argument("--instances", type=int, default=3000)
    parser.add_argument("--no-orthanc", action="store_true")
    args = parser.parse_args()
    refuse_unwrappable(parser, WRAPPED)
    with tempfile.TemporaryDirectory(prefix="radassist-phases-") as tmp:
        work = Path(tmp)
        # Right after many deletes a create on ext4 without a journal costs up to ten times more
        # (bench/ingest.py's docstring): a figure far above ~10-30 µs marks such a run.
        print(f"file create in the bench folder: {create_cost_us(work):.0f} µs")
        count = max(args.instances, _WARM_UP + 10)
        studies = generate(work / "in", count if args.kind == "small" else 0, count if args.kind == "ct" else 0)
        files = studies[args.kind]
        run = ours(work, files)
        before, after = run.disk_before, run.disk_after
        counted = len(files) - _WARM_UP
        print(f"{args.kind} instances, one association, {counted} counted (medians, ms):")
        for name, value in report(run.phases):
            print(f"  {name:<58}{value:8.3f}")
        print(f"our round on average (sending time / instances): {run.mean_round:.3f} ms")
        print(f"listener CPU per instance: user {run.user:.3f} ms, system {run.system:.3f} ms")
        if before is not None and after is not None:
            print(f"disk per instance: {(after.writes - before.writes) / counted:.1f} write requests, "
                  f"{(after.sectors - before.sectors) * 512 / counted / 1024:.0f} KiB, "
                  f"{(after.flushes - before.flushes) / counted:.2f} cache flushes")
        if not args.no_orthanc:
            theirs = orthanc_round_ms(work, files)
            print(f"Orthanc's round on average: {theirs:.3f} ms; ours/Orthanc in instances/s: {theirs / run.mean_round:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
