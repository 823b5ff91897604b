"""Where parallel associations wait in our listener: every process's parts, timed on one clock.

    .venv/bin/python bench/listener_timeline.py [--kind small|ct] [--instances 600] [--associations 4]
                                                [--processes 2]

``bench/listener_phases.py`` times one association in one process.  With several associations the
question is what they wait for: the write turn (one writer at a time across the listener's
processes), another association's flush, the interpreter, the disk.  This runs the real listener
(``python -m dicom_node``, SQLite, ``--processes`` processes) with a few of its functions wrapped in
every process, sends ``--instances`` of the bench's studies (``bench/ingest.py``) over
``--associations`` associations with dcmtk's storescu, and prints for each part how long one call
took (median and mean) and how much of the sending time all calls together took, then: how much of
that time some process held the write turn, how many instances each commit carried, the time each
association spent outside the handler between two instances, and the CPU per instance
(``bench/cpu_use.py``).

The wrappers go into every listener process (they are started with ``spawn``) through
``bench/timing_hook``'s ``sitecustomize`` on ``PYTHONPATH`` (``bench/timed_parts.py``), which each
process writes its timings from to a file of its own.  They add about a microsecond per call.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cpu_use import Snapshot
from ingest import create_cost_us, generate, send, start_ours
from timed_parts import Call, Wrapped, hook_environment, recorded_calls, refuse_unwrappable

WRAPPED: tuple[Wrapped, ...] = (
    Wrapped("dicom_node.storage", "", "handle_store", "handler"),
    Wrapped("radassist.store.instances", "InstanceStore", "write", "file"),
    Wrapped("dicom_node.group_commit", "GroupCommit", "record", "group commit, waits included"),
    Wrapped("dicom_node.group_commit", "GroupCommit", "_commit", "rows and flush"),
    Wrapped("dicom_node.group_commit", "GroupCommit", "_flush", "flush"),
    Wrapped("dicom_node.background_flush", "BackgroundFlush", "_flush_through", "background flush"),
)
"""What is timed in every listener process, with the SQLite write turn's waits and holds.  Some are
private names: :func:`timed_parts.unwrappable` says which went missing before the listener starts."""


def union_ms(intervals: list[tuple[int, int]]) -> float:
    """How long at least one of ``intervals`` was open, ms."""
    total, current = 0, None
    for a, b in sorted(intervals):
        if current is not None and a <= current[1]:
            current[1] = max(current[1], b)
            continue
        if current is not None:
            total += current[1] - current[0]
        current = [a, b]
    if current is not None:
        total += current[1] - current[0]
    return total / 1e6


def report(found: list[Call], wall_ms: float, count: int) -> None:
    by_part: dict[str, list[float]] = collections.defaultdict(list)
    handlers: dict[tuple[int, int], list[tuple[int, int]]] = collections.defaultdict(list)
    for part, pid, thread, a, b in found:
        by_part[part].append((b - a) / 1e6)
        if part == "handler":
            handlers[(pid, thread)].append((a, b))
    print(f"{'part':<32}{'calls':>7}{'median ms':>11}{'mean ms':>9}{'all calls, % of the time':>26}")
    for part, values in sorted(by_part.items()):
        print(f"{part:<32}{len(values):>7}{statistics.median(values):>11.3f}{statistics.mean(values):>9.3f}"
              f"{sum(values) / wall_ms * 100:>25.0f}%")
    held = [(a, b) for part, _pid, _thread, a, b in found if part == "write turn, held"]
    commits = len(by_part.get("rows and flush", [])) or 1
    outside = [(later[0] - earlier[1]) / 1e6 for calls in handlers.values()
               for earlier, later in itertools.pairwise(sorted(calls))]
    print(f"the write turn held by some process: {union_ms(held) / wall_ms * 100:.0f}% of the time; "
          f"{count / commits:.2f} instances per commit")
    if outside:
        print(f"outside the handler between two instances of one association: median {statistics.median(outside):.3f} ms, "
              f"{len(handlers)} association threads")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("small", "ct"), default="small")
    parser.add_argument("--instances", type=int, default=600)
    parser.add_argument("--associations", type=int, default=4)
    parser.add_argument("--processes", type=int, default=min(os.cpu_count() or 1, 4))
    args = parser.parse_args()
    refuse_unwrappable(parser, WRAPPED)
    with tempfile.TemporaryDirectory(prefix="radassist-bench-") as tmp:
        work = Path(tmp)
        # Minutes after many deletes a create on ext4 without a journal costs up to ten times more
        # (bench/ingest.py's docstring): a figure far above ~10-30 µs marks such a run.
        print(f"file create in the bench folder: {create_cost_us(work):.0f} µs")
        files = generate(work / "in", args.instances if args.kind == "small" else 1,
                         args.instances if args.kind == "ct" else 1)[args.kind]
        timeline = work / "timeline"
        proc, port = start_ours(work, "", args.processes,
                                env_extra=hook_environment(timeline, WRAPPED, write_turn=True))
        try:
            os.sync()
            before, start = Snapshot.take(proc.pid), time.monotonic_ns()
            seconds = send(port, files, args.associations, True)
            end, cpu = time.monotonic_ns(), before.until(Snapshot.take(proc.pid))
            time.sleep(1.0)  # every process writes its timings down at least twice a second
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        count = len(files)
        print(f"{args.kind}: {count} instances over {args.associations} associations, {args.processes} listener "
              f"processes: {count / seconds:.0f} instances/s")
        report(recorded_calls(timeline, start, end), (end - start) / 1e6, count)
        print(f"CPU per instance, ms: listener {cpu.receiver * 1e3 / count:.2f}, sender {cpu.sender * 1e3 / count:.2f}, "
              f"machine {cpu.machine_busy * 1e3 / count:.2f} ({os.cpu_count()} cores: "
              f"{cpu.machine_busy / (seconds * (os.cpu_count() or 1)) * 100:.0f}% busy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
