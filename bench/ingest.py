"""Ingest benchmark: our DICOM listener against dcmtk's storescp and Orthanc, same studies, same sender.

    .venv/bin/python bench/ingest.py [--database-url URL] [--small N] [--ct-slices N] [--no-orthanc] [--cases ...]

Generates three studies (one ~15 MB radiograph, a 512x512 CT, N small instances), sends each with
dcmtk's storescu (``TCP_NODELAY=1``) with 1 and with 4 parallel associations to a fresh
``python -m dicom_node``, to a fresh ``storescp`` and to a fresh Orthanc, then a short
small-instance run with Nagle on (no ``TCP_NODELAY``) and an ``association`` run (``--associations``
small instances, each sent by a storescu of its own: one association per instance, as a router that
opens one per study, so its instances/s is associations/s), and prints instances/s, MB/s and our
ratios to both.  storescp writes each file and answers, with no fsync: the speed of a receiver
that promises nothing after a power cut.  Orthanc (Debian's, shipped defaults) fdatasyncs each
file before it answers (``SyncStorageArea``), but neither the file's folder nor its SQLite index
per instance (seen with strace), where we sync all three: it is the nearest thing to our promise
among the nodes an administrator already runs.  For the parallel runs our node runs
``--processes`` listener processes on the port (default: one per core, at most 4;
``[dicom] listener_processes``), storescp runs with ``--fork`` and Orthanc on its own threads.
The ``floor ratio`` column is the durable-write floor of ``bench/durable_floor.py`` (the system
calls alone, one instance after another, on the same disk) over storescp: no listener that
answers Success only after its file, name and row are durable can pass that ratio on one
association; it is timed the way our listener syncs here (one ``syncfs`` per group on SQLite,
``[storage] sync = "auto"``, or, for instances of at most ``[storage] in_commit_max_bytes``, one
sync of the WAL in their commit; ``RADASSIST_STORAGE_SYNC=each-file`` in the environment runs our
listener, and times the floor, with the three flushes instead).  Next to our
ratio to Orthanc stand the targets of issue 25 and whether this run met them (at least 1.0 on small
instances and CT slices with one association, 1.5 with four).  Under each case's line stands what one
instance cost in CPU (``bench/cpu_use.py``): each receiver's processes, the sender's, the whole
machine's (kernel threads included), and, where a target is set, the machine's CPU time per instance
at the target's speed (its cores over the instances/s it asks for): once the cores are busy, the
receiver, the sender and the kernel must fit in that.  Our figures
include the durable write (file, link, commit, and one ``syncfs`` on SQLite, or the commit's own
sync of the WAL with the bytes in it for a small instance, or the file's and folder's fsyncs on
PostgreSQL) before each Success.  Each case
runs ``--repeat`` times, the receivers taking turns, and the medians are printed: on a shared
VM one run of a few seconds can be a third off.

Before each receiver's run the page cache is written back (``sync``): storescp leaves its files
unsynced, and our listener's one ``syncfs`` per group would otherwise pay for them.  Each run writes
into a folder of its own, and nothing is deleted until the end: on ext4 without a
journal (this project's benchmark VM), creating a file skips every inode freed in the last minute,
or the last six while its inode-table block is still unwritten (``recently_deleted`` in the kernel's
``fs/ext4/ialloc.c``: 60 s, 300 s more when dirty), one cache lookup each, so deleting the previous
run's thousand files made each create of the next run cost up to 1 ms, for storescp and us alike.
The header prints what a create costs in the bench folder at the start, so a reader can tell such a
run from a normal one (a journaled ext4 or XFS: tens of µs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cpu_use import CpuUse, Snapshot
from durable_floor import durable
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from radassist.config.storage import StorageSettings
from radassist.store.filesystem_sync import unavailable_reason

REPO = Path(__file__).resolve().parents[1]
STORESCU, STORESCP = "/usr/bin/storescu", "/usr/bin/storescp"
ORTHANC = "/usr/sbin/Orthanc"
_RUN_NUMBERS = itertools.count(1)
ORTHANC_TARGETS = {("small", 1): 1.0, ("ct", 1): 1.0, ("small", 4): 1.5, ("ct", 4): 1.5}
"""Our instances/s over Orthanc's that issue 25 asks for, by (study, associations)."""
CASES = ("radiograph", "ct", "small", "small-nagle", "association")


def _in_commit_max_bytes() -> int:
    """``[storage] in_commit_max_bytes`` of our listener: from the environment, like ``sync``."""
    default = StorageSettings.model_fields["in_commit_max_bytes"].default
    return int(os.environ.get("RADASSIST_STORAGE_IN_COMMIT_MAX_BYTES", default))


def _one_flush(database_url: str | None) -> bool:
    """Whether our listener takes one ``syncfs`` per group here (``[storage] sync``, from the
    environment like every other setting of our listener: ``RADASSIST_STORAGE_SYNC=each-file``
    times the three flushes)."""
    if os.environ.get("RADASSIST_STORAGE_SYNC", "auto") == "each-file":
        return False
    return not (database_url or "").startswith("postgresql") and unavailable_reason() is None


def _run_folder(work: Path, receiver: str) -> Path:
    """A new folder for one receiver's run; kept until the end (see the module docstring)."""
    folder = work / f"{receiver}-{next(_RUN_NUMBERS):03d}"
    folder.mkdir(parents=True)
    return folder


def create_cost_us(folder: Path, count: int = 200) -> float:
    """Microseconds per empty-file create in ``folder`` (the files are kept, like the runs')."""
    target = _run_folder(folder, "create-cost")
    started = time.perf_counter()
    for n in range(count):
        os.close(os.open(target / f"{n:04d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return (time.perf_counter() - started) / count * 1e6


def _image(path: Path, sop_class: str, study: str, series: str, rows: int, cols: int, bits: int, n: int) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.Modality = "BENCH^PATIENT", "BENCH1", "OT"
    ds.InstanceNumber = n
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    dtype = np.uint16 if bits == 16 else np.uint8
    ds.PixelData = (np.arange(rows * cols, dtype=np.uint32) * (n + 1) % 251).astype(dtype).tobytes()
    ds.save_as(path, enforce_file_format=True)


def generate(folder: Path, small: int, ct_slices: int) -> dict[str, list[Path]]:
    studies: dict[str, list[Path]] = {}
    for name, count, make in (
        ("radiograph", 1, lambda p, s, r, n: _image(p, DigitalXRayImageStorageForPresentation, s, r, 2800, 2800, 16, n)),
        ("ct", ct_slices, lambda p, s, r, n: _image(p, CTImageStorage, s, r, 512, 512, 16, n)),
        ("small", small, lambda p, s, r, n: _image(p, SecondaryCaptureImageStorage, s, r, 32, 32, 8, n)),
    ):
        sub = folder / name
        sub.mkdir(parents=True)
        study, series = generate_uid(), generate_uid()
        studies[name] = [sub / f"{n:05d}.dcm" for n in range(count)]
        for n, path in enumerate(studies[name]):
            make(path, study, series, n)
    return studies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def start_ours(
    work: Path, database_url: str, processes: int = 1, *, prefix: Sequence[str] = (), startup_timeout: float = 30,
    env_extra: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Our listener on a fresh store and database; ``prefix`` runs it under another program (valgrind),
    ``env_extra`` adds to its environment (the timers of ``bench/timed_parts.py``)."""
    port = _free_port()
    data = _run_folder(work, "ours")
    url = database_url or f"sqlite:///{data / 'radassist.sqlite3'}"
    # The log stays at its shipped level (INFO: one line per study and association), to /dev/null.
    env = {**os.environ, "RADASSIST_STORAGE_PATH": str(data), "RADASSIST_DATABASE_URL": url,
           "RADASSIST_DICOM_HOST": "127.0.0.1", "RADASSIST_DICOM_PORT": str(port),
           "RADASSIST_DICOM_ALLOW_ANY_CALLER": "true",
           "RADASSIST_STORAGE_MIN_FREE_BYTES": "0", "RADASSIST_DICOM_LISTENER_PROCESSES": str(processes)}
    env.pop("RADASSIST_LOGGING_LEVEL", None)
    env.pop("RADASSIST_CONFIG", None)
    env.update(env_extra or {})
    if database_url.startswith("postgresql"):
        _empty_postgres(database_url)  # every run starts from an empty database, as with SQLite
    subprocess.run([sys.executable, "-m", "radassist", "db", "upgrade"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "dicom_node"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(port, startup_timeout)
    return proc, port


def _env(nodelay: bool) -> dict[str, str]:
    """dcmtk reads ``TCP_NODELAY`` from the environment, on both the sending and the receiving side."""
    env = dict(os.environ)
    env.pop("TCP_NODELAY", None)
    if nodelay:
        env["TCP_NODELAY"] = "1"
    return env


def start_storescp(work: Path, parallel: int, nodelay: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    out = _run_folder(work, "storescp")
    args = [STORESCP, "-aet", "RADASSIST", "-od", str(out), *(["--fork"] if parallel > 1 else []), str(port)]
    proc = subprocess.Popen(args, env=_env(nodelay), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(port)
    return proc, port


def start_orthanc(work: Path, nodelay: bool) -> tuple[subprocess.Popen[bytes], int]:
    """Debian's Orthanc with its shipped defaults, but for ports, folders and no plugins or HTTP.

    Orthanc's DICOM side is dcmtk's, so it reads ``TCP_NODELAY`` from its environment as storescp does,
    and it serves parallel associations on its own threads (``DicomThreadsCount``, default 4).
    """
    port = _free_port()
    out = _run_folder(work, "orthanc")
    config = {
        "Name": "radassist-bench", "StorageDirectory": str(out), "IndexDirectory": str(out),
        "DicomAet": "RADASSIST", "DicomPort": port, "DicomCheckCalledAet": False,
        "HttpServerEnabled": False, "Plugins": [], "SaveJobs": False,
        "SyncStorageArea": True,  # the shipped default, stated: each file is fdatasynced before the answer
    }
    (out / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    proc = subprocess.Popen([ORTHANC, str(out / "orthanc.json")], cwd=out, env=_env(nodelay),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(port, 60)
    return proc, port


def send(port: int, files: list[Path], parallel: int, nodelay: bool, *, each_alone: bool = False) -> float:
    """Seconds for storescu to send ``files`` over ``parallel`` associations at once; ``each_alone``:
    one association (one storescu) per file, one after another, as a router that opens one per study."""
    env = _env(nodelay)
    rounds = [[[file]] for file in files] if each_alone else [[files[i::parallel] for i in range(parallel)]]
    started = time.perf_counter()
    for chunks in rounds:
        procs = [subprocess.Popen([STORESCU, "-xe", "-aet", "BENCH", "-aec", "RADASSIST", "127.0.0.1", str(port),
                                   *map(str, chunk)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for chunk in chunks if chunk]
        for proc in procs:
            _out, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"storescu failed: {err.decode(errors='replace')[-500:]}")
    return time.perf_counter() - started


@dataclass
class Result:
    seconds: float
    count: int
    size: int
    cpu: CpuUse

    @property
    def ips(self) -> float:
        return self.count / self.seconds

    @property
    def mbps(self) -> float:
        return self.size / self.seconds / 1e6


def median(results: list[Result]) -> Result:
    """The median of each figure; the same files, so instances/s and MB/s are the median run's."""
    seconds = statistics.median(r.seconds for r in results)
    cpu = CpuUse(*(statistics.median(getattr(r.cpu, name) for r in results)
                   for name in ("receiver", "sender", "machine_busy")))
    return Result(seconds, results[0].count, results[0].size, cpu)


def cpu_line(name: str, result: Result) -> str:
    """What one instance cost in CPU, in ms: the receiver's processes, the sender, the whole machine."""
    per = 1000 / result.count
    return (f"{name} {result.cpu.receiver * per:.2f} (sender {result.cpu.sender * per:.2f}, "
            f"machine {result.cpu.machine_busy * per:.2f})")


def run(
    kind: str, work: Path, files: list[Path], parallel: int, nodelay: bool, database_url: str, processes: int = 1,
    *, each_alone: bool = False,
) -> Result:
    if kind == "ours":
        proc, port = start_ours(work, database_url, processes if parallel > 1 else 1)
    elif kind == "orthanc":
        proc, port = start_orthanc(work, nodelay)
    else:
        proc, port = start_storescp(work, parallel, nodelay)
    try:
        # What the receiver before left in the page cache (storescp syncs nothing) is written back
        # now, not during this run: a receiver that flushes its file system must not pay for it.
        os.sync()
        before = Snapshot.take(proc.pid)
        seconds = send(port, files, parallel, nodelay, each_alone=each_alone)
        cpu = before.until(Snapshot.take(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return Result(seconds, len(files), sum(p.stat().st_size for p in files), cpu)


def _target(name: str, parallel: int, ratio: float) -> str:
    """The target column and whether this run met it (blank where issue 25 sets none)."""
    target = ORTHANC_TARGETS.get((name, parallel))
    if target is None:
        return ""
    return f"{target:>8.1f}{'yes' if ratio >= target else 'no':>5}"


def _budget(name: str, parallel: int, orthanc: Result) -> str:
    """The machine's CPU time per instance at the target's speed, all cores together: what the
    receiver, the sender and the kernel must fit in once the cores are busy."""
    target = ORTHANC_TARGETS.get((name, parallel))
    if target is None:
        return ""
    cores = os.cpu_count() or 1
    return f"; at the target, {cores} cores give {1000 * cores / (target * orthanc.ips):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="",
                        help="our node's database (default: SQLite in a temp folder); a PostgreSQL one is emptied "
                        "before each run, so give it a database of its own")
    parser.add_argument("--processes", type=int, default=min(os.cpu_count() or 1, 4),
                        help="our listener processes for the parallel runs (default: one per core, at most 4); "
                        "storescp forks one per association")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--ct-slices", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the medians are printed")
    parser.add_argument("--nagle-small", type=int, default=100,
                        help="small instances in the Nagle-on run (storescp needs ~90 ms each there; with "
                        "fewer, the sender's start and association set-up weigh more than the transfer)")
    parser.add_argument("--associations", type=int, default=40,
                        help="small instances in the 'association' case, each sent by a storescu of its own (one "
                        "association per instance, as a router that opens one per study: the set-up's cost)")
    parser.add_argument("--no-orthanc", action="store_true", help="leave Orthanc out (when it is not installed)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="which studies to send")
    args = parser.parse_args()
    with_orthanc = not args.no_orthanc
    if with_orthanc and not os.access(ORTHANC, os.X_OK):
        print(f"{ORTHANC} not found: apt-get install orthanc, or pass --no-orthanc", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="radassist-bench-") as tmp:
        work = Path(tmp)
        studies = generate(work / "in", args.small, args.ct_slices)
        print(f"file create in the bench folder: {create_cost_us(work):.0f} µs (see the docstring)")
        print(f"{'study':<12}{'assoc':>6}{'nodelay':>8}{'ours inst/s':>13}{'MB/s':>8}{'storescp inst/s':>17}{'MB/s':>8}"
              f"{'ratio inst/s':>14}{'floor ratio':>13}" + (f"{'Orthanc inst/s':>16}{'MB/s':>8}{'ours/Orthanc':>14}"
                                                             f"{'target':>8}{'met':>5}" if with_orthanc else ""))
        plan = [
            (name, files, parallel, True)
            for name, files in studies.items()
            for parallel in (1, 4)
            if parallel <= len(files) and name in args.cases  # one radiograph cannot go over four associations
        ]
        if "small-nagle" in args.cases:
            plan.append(("small-nagle", studies["small"][: args.nagle_small], 1, False))
        if "association" in args.cases:
            plan.append(("association", studies["small"][: args.associations], 1, True))
        for name, files, parallel, nodelay in plan:
            receivers = ["ours", "storescp", *(["orthanc"] if with_orthanc else [])]
            runs = [
                [run(kind, work, files, parallel, nodelay, args.database_url, args.processes,
                     each_alone=name == "association") for kind in receivers]
                for _ in range(max(1, args.repeat))
            ]
            ours, ref, *orthanc = (median(list(results)) for results in zip(*runs, strict=True))
            floor = ""
            if parallel == 1 and nodelay and name != "association":
                # Kept until the end like the runs' folders: deleting its files here slowed every
                # create of the next case (the four-association one) for the next minute.
                floor_dir = Path(tempfile.mkdtemp(prefix="floor-", dir=work))
                size = ref.size // ref.count
                one_flush = _one_flush(args.database_url)
                per_instance = durable(floor_dir, os.urandom(size), ref.count, one_flush=one_flush,
                                       in_commit=one_flush and size <= _in_commit_max_bytes())
                floor = f"{1 / per_instance / ref.ips:.2f}"
            print(f"{name:<12}{parallel:>6}{str(nodelay):>8}{ours.ips:>13.1f}{ours.mbps:>8.1f}{ref.ips:>17.1f}"
                  f"{ref.mbps:>8.1f}{ours.ips / ref.ips:>14.2f}{floor:>13}"
                  + "".join(f"{peer.ips:>16.1f}{peer.mbps:>8.1f}{ours.ips / peer.ips:>14.2f}"
                            + _target(name, parallel, ours.ips / peer.ips) for peer in orthanc),
                  flush=True)
            print(f"{'':<12}CPU ms per instance: "
                  + "; ".join(cpu_line(*pair) for pair in zip(receivers, (ours, ref, *orthanc), strict=True))
                  + "".join(_budget(name, parallel, peer) for peer in orthanc), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
