"""Single-study latency: from the end of a study's quiet time to its SR at the PACS, warm model.

    .venv/bin/python bench/latency.py [--studies N] [--repeat N] [--quiet S] [--no-timer]

Starts ``radassist run`` on the embedded defaults (SQLite, Celery's SQLAlchemy transport; the
listener, the drafting, io and measuring workers, the scheduler and the web app as their own
processes) with the tiny Gemma 3 model written offline (:mod:`radassist_devtools.tiny_models`), and
dcmtk's storescp as the PACS.  One study warms the model up; then each of ``--studies`` one-image
chest studies is sent alone (storescu, one association) and waited for.

For each study: the end of its quiet time is ``studies.last_received_at`` + ``study_quiet_seconds``;
the SR's arrival is the modification time of the file storescp wrote (same clock).  The breakdown
comes from the job's events: completion (quiet end -> ``study:complete``), to prepare (-> the cpu
worker's ``job:prepare:started``), prepare (-> ``job:prepare:completed``), to draft (-> the drafting
worker's ``job:draft:started``), draft less model and model (-> ``job:draft:completed``: the model's
own seconds from the draft's record, and the rest), build (-> ``job:sr:built``), deliver (-> the SR
file at the PACS).

Prints the medians of each run and, with ``--repeat``, the median of the runs' medians, against the
target (0.5 s).  ``--no-timer`` turns the listener's completion timer off (the sweep alone).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from tests.conftest import TESTDATA, free_port, wait_for_port, wait_until  # noqa: E402
from tests.peers import storescp, storescu  # noqa: E402

TARGET_SECONDS = 0.5
TIMELINE = False
"""``--timeline``: print each study's events, in seconds from its quiet-time end."""
PARTS = ("completion", "to prepare", "prepare", "to draft", "draft less model", "model", "build", "deliver")


@dataclass(frozen=True)
class Sample:
    total: float
    parts: dict[str, float]


def write_config(path: Path, data: Path, model: Path, pacs_port: int, quiet: float, sweep: float,
                 timer: bool, poll: float | None, wakeups: bool = True) -> int:
    dicom_port = free_port()
    lines = [
        "[dicom]", 'ae_title = "RADASSIST"', 'host = "127.0.0.1"', f"port = {dicom_port}",
        f"study_quiet_seconds = {quiet}", f"completion_timer = {'true' if timer else 'false'}",
        "[[dicom.allowed_callers]]", 'ae_title = "MODALITY"', 'network = "127.0.0.1/32"',
        "[storage]", f'path = "{data}"',
        "[queue]", f"sweep_interval_seconds = {sweep}", *([f"embedded_polling_seconds = {poll}"] if poll else []),
        f"embedded_wakeups = {'true' if wakeups else 'false'}",
        "[model]", f'name = "{model}"', 'device = "cpu"', "max_new_tokens = 64", "image_size = 64",
        "local_files_only = true",
        "[web]", 'host = "127.0.0.1"', f"port = {free_port()}",
        "[[destinations]]", 'name = "pacs"', 'ae_title = "PACS"', 'host = "127.0.0.1"', f"port = {pacs_port}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return dicom_port


def chest_radiograph(image: str) -> pydicom.Dataset:
    """pydicom's test CR (1955x1841, JPEG 2000 lossless), as it is (``j2k``) or decompressed."""
    ds = pydicom.dcmread(TESTDATA / "pydicom-data" / "RG1_J2KR.dcm")
    if image == "uncompressed":
        ds.decompress()
    return ds


def one_image_study(folder: Path, image: pydicom.Dataset) -> tuple[str, Path]:
    """A chest radiograph under new UIDs."""
    ds = copy.deepcopy(image)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path)
    return str(ds.StudyInstanceUID), path


def sr_arrivals(folder: Path) -> dict[str, float]:
    """Study Instance UID -> the time the PACS wrote its SR (file mtime)."""
    found: dict[str, float] = {}
    for file in folder.iterdir():
        if not file.is_file():
            continue
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - a file still being written
            continue
        if str(ds.get("Modality", "")) == "SR":
            found[str(ds.StudyInstanceUID)] = file.stat().st_mtime
    return found


def _epoch(text: str) -> float:
    import datetime as dt

    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def breakdown(database: Path, study_uid: str, quiet: float, arrived: float) -> Sample:
    """The study's latency and its parts, from its rows and events."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        study_id, last = db.execute(
            "SELECT id, last_received_at FROM studies WHERE study_instance_uid = ?", (study_uid,)
        ).fetchone()
        events = {tag: _epoch(at) for tag, at in db.execute(
            "SELECT tag, at FROM events WHERE study_id = ? ORDER BY id", (study_id,)
        )}
        generation = db.execute(
            "SELECT d.generation FROM drafts d JOIN jobs j ON j.id = d.job_id WHERE j.study_id = ?", (study_id,)
        ).fetchone()[0]
    import json

    model_seconds = float(json.loads(generation).get("seconds") or 0.0)
    quiet_end = _epoch(last) + quiet
    if TIMELINE:
        marks = sorted([*((at - quiet_end, tag) for tag, at in events.items()), (arrived - quiet_end, "SR at PACS")])
        print("    " + "  ".join(f"{tag} {offset:+.3f}" for offset, tag in marks))
    marks = [quiet_end, events["study:complete"], events["job:prepare:started"], events["job:prepare:completed"],
             events["job:draft:started"], events["job:draft:completed"], events["job:sr:built"], arrived]
    spans = [later - earlier for earlier, later in zip(marks, marks[1:], strict=False)]
    parts = {
        "completion": spans[0],
        "to prepare": spans[1],
        "prepare": spans[2],
        "to draft": spans[3],
        "draft less model": spans[4] - model_seconds,
        "model": model_seconds,
        "build": spans[5],
        "deliver": spans[6],
    }
    return Sample(arrived - quiet_end, parts)


@contextlib.contextmanager
def service(config: Path, dicom_port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen([sys.executable, "-m", "radassist", "run", "--config", str(config)],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for_port(dicom_port, timeout=120)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def send_and_wait(dicom_port: int, pacs_folder: Path, folder: Path, image: pydicom.Dataset,
                  timeout: float = 120) -> tuple[str, float]:
    study_uid, path = one_image_study(folder, image)
    result = storescu(dicom_port, path)
    if result.returncode != 0:
        raise SystemExit(f"storescu failed: {result.stderr[-500:]}")
    arrived = wait_until(lambda: sr_arrivals(pacs_folder).get(study_uid), timeout=timeout, interval=0.05)
    return study_uid, float(arrived)


def run_once(model: Path, studies: int, quiet: float, sweep: float, timer: bool, root: Path,
             image: pydicom.Dataset, poll: float | None, wakeups: bool) -> list[Sample]:
    data, pacs_folder = root / "data", root / "pacs"
    with storescp(pacs_folder) as pacs:
        config = root / "radassist.toml"
        dicom_port = write_config(config, data, model, pacs.port, quiet, sweep, timer, poll, wakeups)
        with service(config, dicom_port, root / "service.log"):
            send_and_wait(dicom_port, pacs_folder, root / "send", image, timeout=300)  # warm-up: loads the model
            samples = []
            for _ in range(studies):
                time.sleep(0.5)  # each study alone: nothing else in flight
                study_uid, arrived = send_and_wait(dicom_port, pacs_folder, root / "send", image)
                samples.append(breakdown(data / "radassist.sqlite3", study_uid, quiet, arrived))
    return samples


def medians(samples: list[Sample]) -> Sample:
    return Sample(statistics.median(s.total for s in samples),
                  {p: statistics.median(s.parts[p] for s in samples) for p in PARTS})


def show(label: str, sample: Sample) -> None:
    parts = "  ".join(f"{p} {sample.parts[p]:.3f}" for p in PARTS)
    print(f"{label}: {sample.total:.3f} s  ({parts})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=5, help="studies per run (>= 5 for reported figures)")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each with a fresh service")
    parser.add_argument("--quiet", type=float, default=1.0, help="study_quiet_seconds")
    parser.add_argument("--sweep", type=float, default=2.0, help="sweep_interval_seconds (the shipped default)")
    parser.add_argument("--no-timer", action="store_true", help="complete by the sweep alone")
    parser.add_argument("--image", choices=("uncompressed", "j2k"), default="uncompressed",
                        help="the CR as sent: decompressed (7 MB) or JPEG 2000 lossless as in pydicom's data (4 MB)")
    parser.add_argument("--poll", type=float, default=None,
                        help="[queue] embedded_polling_seconds (default: the shipped default)")
    parser.add_argument("--no-wakeups", action="store_true", help="the embedded broker's workers poll only")
    parser.add_argument("--timeline", action="store_true", help="print each study's events from its quiet-time end")
    args = parser.parse_args()
    global TIMELINE
    TIMELINE = args.timeline
    from radassist_devtools.tiny_models import write_tiny_model

    runs: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="radassist-latency-") as tmp:
        model = write_tiny_model(Path(tmp) / "tiny-gemma3", arch="gemma3")
        for run in range(args.repeat):
            root = Path(tmp) / f"run{run}"
            root.mkdir()
            samples = run_once(model, args.studies, args.quiet, args.sweep, not args.no_timer, root,
                               chest_radiograph(args.image), args.poll, not args.no_wakeups)
            for index, sample in enumerate(samples):
                show(f"  run {run + 1} study {index + 1}", sample)
            runs.append(medians(samples))
            show(f"run {run + 1} median of {len(samples)}", runs[-1])
    result = medians(runs) if len(runs) > 1 else runs[0]
    show(f"median of {len(runs)} run(s)", result)
    verdict = "PASS" if result.total <= TARGET_SECONDS else "FAIL"
    print(f"load average (1, 5, 15 min) at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"quiet-time end -> SR at the PACS: {result.total:.3f} s; target {TARGET_SECONDS} s: {verdict}")
    print(f"(image {args.image}, timer {'off' if args.no_timer else 'on'}, wake-ups "
          f"{'off' if args.no_wakeups else 'on'}, sweep every {args.sweep} s, "
          f"quiet {args.quiet} s, "
          f"{os.cpu_count()} CPUs; the machine may be shared)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
