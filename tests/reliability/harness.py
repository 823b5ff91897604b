"""Real processes and real peers for the fault-injection suite and the soak benchmark.

Everything a scenario breaks is private to it: a PostgreSQL cluster of its own (``initdb`` +
``pg_ctl`` in a temporary folder, on a free port), a ``redis-server`` of its own as the broker, a
dcmtk ``storescp`` as the PACS and python-hl7's MLLP server as the RIS.  The machine's shared
PostgreSQL and Redis are never touched, so a restart here disturbs nobody else.

The counts are taken against what the *senders were told*: an instance counts as acknowledged
only when ``storescu -v`` printed ``Received Store Response (Success)`` for its file, and each
acknowledged instance must then be in the database and on disk.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import hl7
import pydicom
import sqlalchemy as sa

from tests.conftest import free_port, wait_for_port, wait_until
from tests.dicom_factories import make_ct_study, write_study
from tests.peers import mllp_ris

REPO = Path(__file__).resolve().parents[2]
STORESCU, STORESCP = "/usr/bin/storescu", "/usr/bin/storescp"
PG_BIN = Path(os.environ.get("RADASSIST_RELIABILITY_PG_BIN", "/usr/local/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def outage_seconds() -> float:
    """How long each outage lasts: ``RADASSIST_RELIABILITY_OUTAGE_SECONDS``, 60 s as issue 5 asks."""
    return float(os.environ.get("RADASSIST_RELIABILITY_OUTAGE_SECONDS", "60"))


# --- private infrastructure ------------------------------------------------------------------


class PrivatePostgres:
    """A throw-away PostgreSQL cluster, so a scenario can stop the database without touching the
    machine's shared server.  initdb refuses to run as root; then the cluster runs as ``postgres``."""

    def __init__(self, root: Path | None = None) -> None:
        # Its own folder directly under /tmp: a pytest or mkdtemp folder is private to root, and
        # the cluster may run as ``postgres``.
        self.root = Path(tempfile.mkdtemp(prefix="radassist-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["/usr/sbin/runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str) -> None:
        result = subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {result.stderr[-2000:]}")

    def init(self) -> PrivatePostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        return self

    def start(self) -> None:
        # Durable as in production (fsync, synchronous commit): an "immediate" stop is a crash, and
        # a commit the listener answered Success for must survive it.
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=300"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """``immediate`` is a crash from the clients' point of view: connections drop at once."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        admin = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres",
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("fast")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server used only as this scenario's broker; append-only, as a broker in production is,
    so a restart keeps the queued messages."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no"],
            stdout=(self.root / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis writes its append-only file and exits
            self.process.wait(timeout=30)
        self.process = None

    close = stop


# --- peers: a PACS that can go down, a RIS that can go down or answer AE ---------------------


class Pacs:
    """dcmtk storescp with unique file names, so an SR received twice leaves two files."""

    def __init__(self, folder: Path, ae_title: str = "PACS") -> None:
        self.folder = folder
        self.ae_title = ae_title
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [STORESCP, "--aetitle", self.ae_title, "--output-directory", str(self.folder), "+uf", "+xa",
             str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    close = stop

    def received(self) -> list[tuple[str, str]]:
        """(StudyInstanceUID, SOPInstanceUID) of every file received, duplicates included."""
        out = []
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - a file still being written; counted next time
                continue
            out.append((str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)))
        return out


class Ris:
    """python-hl7's MLLP server that can be stopped and restarted on the same port, with an ACK
    policy that can change while it runs; messages are kept across restarts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[str, str, str | None]] = []  # (control id, accession, ack code or None)
        self.answer: str | None = "AA"
        """The ACK code it answers with; None: it reads the message and never answers."""
        self._stack: contextlib.ExitStack | None = None
        self._lock = threading.Lock()

    def _policy(self, message: hl7.Message, _seen: int) -> str | None:
        control_id = str(message.segment("MSH")[10])
        accession = str(message.segment("OBR")[3]).split("^")[0]
        code = self.answer
        with self._lock:
            self.messages.append((control_id, accession, code))
        return code

    def start(self) -> None:
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(mllp_ris(self._policy, port=self.port))

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
            # the server thread is gone; make sure the port is closed before "down" starts
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        time.sleep(0.1)
                except OSError:
                    break

    close = stop

    def accepted(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(c, a) for c, a, code in self.messages if code == "AA"]


# --- studies ---------------------------------------------------------------------------------


@dataclass
class TestStudy:
    __test__ = False  # a study for the tests, not a test class

    study_uid: str
    accession: str
    files: list[Path]
    sop_uids: list[str]


def make_studies(folder: Path, count: int, slices: int, prefix: str = "RL", size: int = 32) -> list[TestStudy]:
    """``count`` small CT studies of ``slices`` instances each, synthetic patients, unique accessions."""
    studies = []
    for n in range(count):
        accession = f"{prefix}{n:05d}"
        instances = make_ct_study(series_count=1, instances_per_series=slices, patient_name=f"RELIABILITY^{n}",
                                  patient_id=f"RL-{n}", accession_number=accession, rows=size, columns=size)
        files = write_study(instances, folder / f"s{n:04d}")
        sops = [str(ds.SOPInstanceUID) for ds in instances]
        studies.append(TestStudy(str(instances[0].StudyInstanceUID), accession, files, sops))
    return studies


# --- senders ---------------------------------------------------------------------------------

_SENDING = re.compile(r"Sending file: (.+)$")
_RESPONSE = re.compile(r"Received Store Response \(([^)]*)\)")


@dataclass
class SendLog:
    """What storescu was told, per file (path -> True once any attempt was acknowledged)."""

    acked: dict[Path, bool] = field(default_factory=dict)
    associations: int = 0
    failed_associations: int = 0
    failed_responses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, outcomes: dict[Path, bool], ok: bool) -> None:
        with self._lock:
            self.associations += 1
            self.failed_associations += 0 if ok else 1
            for path, acked in outcomes.items():
                self.acked[path] = self.acked.get(path, False) or acked
                self.failed_responses += 0 if acked else 1

    def unacked(self, studies: list[TestStudy]) -> list[Path]:
        return [p for s in studies for p in s.files if not self.acked.get(p)]


def storescu_outcomes(port: int, files: list[Path], calling_ae: str = "MODALITY") -> tuple[dict[Path, bool], bool]:
    """One association sending ``files``; per file, whether the listener answered Success."""
    result = subprocess.run(
        [STORESCU, "-v", "-aet", calling_ae, "-aec", "RADASSIST", "-to", "30", "-ta", "30", "-td", "60",
         "127.0.0.1", str(port), *map(str, files)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    outcomes: dict[Path, bool] = {p: False for p in files}
    current: Path | None = None
    for line in (result.stdout + result.stderr).splitlines():
        if match := _SENDING.search(line):
            current = Path(match.group(1).strip())
        elif (match := _RESPONSE.search(line)) and current is not None:
            status = match.group(1)
            outcomes[current] = status.startswith("Success") or status.startswith("Warning")
            current = None
    return outcomes, result.returncode == 0


def send_studies(port: int, studies: list[TestStudy], log: SendLog, parallel: int = 4,
                 only: Callable[[Path], bool] | None = None, chunk: int = 0) -> None:
    """Send each study on its own association, ``parallel`` associations at a time.

    ``only``: send just the files it accepts (a re-send of what failed); ``chunk``: split a study
    over several associations of this many files (0: one association per study).
    """
    jobs: list[list[Path]] = []
    for study in studies:
        files = [p for p in study.files if only is None or only(p)]
        if not files:
            continue
        size = chunk or len(files)
        jobs += [files[i:i + size] for i in range(0, len(files), size)]

    def one(files: list[Path]) -> None:
        outcomes, ok = storescu_outcomes(port, files)
        log.record(outcomes, ok)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, jobs))


def send_paced(port: int, studies: list[TestStudy], log: SendLog, *, seconds: float, parallel: int = 4) -> threading.Thread:
    """Start sending in the background: study i leaves at ``i * seconds / len(studies)``, on up to
    ``parallel`` associations at once, so a fault injected meanwhile falls in the middle of a burst."""
    started = time.monotonic()
    interval = seconds / max(len(studies), 1)

    def one(index: int) -> None:
        delay = started + index * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        outcomes, ok = storescu_outcomes(port, studies[index].files)
        log.record(outcomes, ok)

    def run() -> None:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(one, range(len(studies))))

    thread = threading.Thread(target=run, name="senders", daemon=True)
    thread.start()
    return thread


def resend_until_acked(port: int, studies: list[TestStudy], log: SendLog, timeout: float = 180.0,
                       parallel: int = 4) -> int:
    """A PACS retries what was refused: send again every file never acknowledged, until all are.
    Returns how many re-send rounds it took."""
    deadline = time.monotonic() + timeout
    rounds = 0
    while log.unacked(studies):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(log.unacked(studies))} instances still refused after {timeout}s")
        rounds += 1
        send_studies(port, studies, log, parallel=parallel, only=lambda p: not log.acked.get(p))
        if log.unacked(studies):
            time.sleep(2)
    return rounds


# --- the service as separate processes -------------------------------------------------------


@dataclass
class Part:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log: Path


class Stack:
    """RadAssist as separate ``radassist`` processes (listener, workers, beat, web), each of which a
    scenario can kill and start again."""

    def __init__(self, root: Path, *, database_url: str, broker_url: str, model: Path, pacs: Pacs | None,
                 ris: Ris | None, extra: dict[str, list[str]] | None = None, quiet_seconds: float = 3.0) -> None:
        self.root = root
        self.data = root / "data"
        self.config = root / "radassist.toml"
        self.dicom_port, self.web_port = free_port(), free_port()
        self.database_url = database_url
        self.parts: dict[str, Part] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
        self.env["HF_HUB_OFFLINE"] = "1"
        self.env["PYTHONPATH"] = str(REPO)
        extra = extra or {}
        sections: dict[str, list[str]] = {
            "dicom": ['ae_title = "RADASSIST"', 'host = "127.0.0.1"', f"port = {self.dicom_port}",
                      f"study_quiet_seconds = {quiet_seconds}", "allow_any_caller = true", "max_associations = 32"],
            "storage": [f'path = "{self.data}"'],
            "database": [f'url = "{database_url}"'],
            "queue": [f'broker_url = "{broker_url}"', "sweep_interval_seconds = 0.5"],
            "model": [f'name = "{model}"', 'device = "cpu"', "max_new_tokens = 16", "image_size = 64",
                      "max_images = 2", "max_slices = 2", "local_files_only = true"],
            "delivery": ["retry_initial_seconds = 0.5", "retry_max_seconds = 2"],
            "web": ['host = "127.0.0.1"', f"port = {self.web_port}"],
        }
        if ris is not None:
            sections["hl7"] = ['host = "127.0.0.1"', f"port = {ris.port}", "ack_timeout_seconds = 5"]
        for section, lines in extra.items():
            sections.setdefault(section, [])
            keys = {line.split("=")[0].strip() for line in lines}
            sections[section] = [ln for ln in sections[section] if ln.split("=")[0].strip() not in keys] + lines
        text = []
        for section, lines in sections.items():
            text += [f"[{section}]", *lines]
        if pacs is not None:
            text += ["[[destinations]]", 'name = "pacs"', f'ae_title = "{pacs.ae_title}"', 'host = "127.0.0.1"',
                     f"port = {pacs.port}"]
        root.mkdir(parents=True, exist_ok=True)
        self.config.write_text("\n".join(text) + "\n")
        self._engine: sa.Engine | None = None

    # processes

    def radassist(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "radassist", *args, "--config", str(self.config)],
                              env=self.env, capture_output=True, text=True, timeout=300, check=True)

    def start(self, name: str, *args: str) -> Part:
        """Start ``radassist <args>`` in its own process group (a worker's pool children die with it)."""
        log = self.root / f"{name}.log"
        argv = [sys.executable, "-m", "radassist", *args, "--config", str(self.config)]
        process = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=self.env,
                                   start_new_session=True, cwd=self.root)
        part = Part(name, argv, process, log)
        self.parts[name] = part
        if args[0] == "listener":
            wait_for_port(self.dicom_port, timeout=60)
        elif args[0] == "web":
            wait_for_port(self.web_port, timeout=60)
        return part

    def start_all(self, draft_workers: int = 1) -> None:
        self.radassist("db", "upgrade")
        self.start("listener", "listener")
        for n in range(draft_workers):
            self.start(f"draft-{n}", "worker", "--queues", "gpu", "--concurrency", "1", "--name", f"draft{n}")
        self.start("io", "worker", "--queues", "io", "--pool", "threads", "--concurrency", "4", "--name", "io")
        self.start("cpu", "worker", "--queues", "cpu", "--concurrency", "1", "--name", "cpu")  # preparing
        self.start("beat", "beat")
        self.start("web", "web")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a part's whole process group (its pool children too) and reap it."""
        part = self.parts[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(part.process.pid, sig)
        part.process.wait(timeout=60)

    def restart(self, name: str) -> Part:
        part = self.parts[name]
        if part.process.poll() is None:
            self.kill(name)
        args = part.argv[3:-2]
        return self.start(name, *args)

    def stop_all(self) -> None:
        for part in self.parts.values():
            if part.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(part.process.pid, signal.SIGTERM)
        for name, part in self.parts.items():
            try:
                part.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(name)
        if self._engine is not None:
            self._engine.dispose()

    def pool_children(self, name: str) -> list[int]:
        """Process ids of a worker's prefork pool children."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.parts[name].process.pid)],
                             capture_output=True, text=True, check=False).stdout
        return [int(x) for x in out.split()]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log.read_text(errors='replace')[-3000:]}" for p in self.parts.values())

    # the database, read directly

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.database_url, pool_pre_ping=True)
        return self._engine

    def query(self, sql: str, **params: object) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())

    def stored_instances(self) -> dict[str, Path]:
        """SOP Instance UID -> file, for each instance row whose file exists."""
        rows = self.query("SELECT sop_instance_uid, path FROM instances")
        instances = self.data / "instances"
        return {uid: instances / path for uid, path in rows if (instances / path).is_file()}

    def retired_studies(self) -> set[str]:
        """Study Instance UIDs whose files retention removed (``files_removed_at``).  It removes only
        studies whose outputs were delivered, with their instance rows: what they held was kept
        until it was no longer needed, not lost."""
        return {uid for (uid,) in self.query(
            "SELECT study_instance_uid FROM studies WHERE files_removed_at IS NOT NULL")}

    def job_states(self) -> dict[str, list[tuple[str, str | None]]]:
        """Study Instance UID -> [(job state, SR SOP Instance UID)], oldest job first."""
        rows = self.query(
            "SELECT s.study_instance_uid, j.state, j.sr_sop_instance_uid FROM studies s "
            "LEFT JOIN jobs j ON j.study_id = s.id ORDER BY j.created_at")
        out: dict[str, list[tuple[str, str | None]]] = {}
        for uid, state, sr in rows:
            out.setdefault(uid, [])
            if state is not None:
                out[uid].append((str(state), sr))
        return out

    def hl7_control_ids(self) -> dict[str, str]:
        """ORU control id -> Study Instance UID."""
        rows = self.query(
            "SELECT d.control_id, s.study_instance_uid FROM deliveries d JOIN jobs j ON j.id = d.job_id "
            "JOIN studies s ON s.id = j.study_id WHERE d.channel = 'hl7' AND d.control_id IS NOT NULL")
        return dict(rows)

    def all_done(self, study_uids: set[str]) -> set[str]:
        """The studies (of ``study_uids``) whose latest job is not ``done``: an empty set when all are."""
        jobs = self.job_states()
        return {uid for uid in study_uids if not jobs.get(uid) or jobs[uid][-1][0] != "done"}


def rss_kib(pid: int) -> int:
    """Resident set size of a process and all its descendants (a worker's pool children), in KiB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pids += [int(c) for c in children]
    return total


# --- counting --------------------------------------------------------------------------------


@dataclass
class Counts:
    scenario: str
    studies_sent: int
    instances_sent: int
    instances_acked: int
    instances_stored: int
    lost: int
    srs_delivered: int
    sr_duplicates: int
    orus_acked: int
    oru_duplicates: int
    redrafted: int
    stuck: int
    seconds: float
    notes: str = ""

    @property
    def duplicates(self) -> int:
        return self.sr_duplicates + self.oru_duplicates

    def row(self) -> str:
        return (f"| {self.scenario} | {self.studies_sent} | {self.instances_acked}/{self.instances_sent} | "
                f"{self.instances_stored} | {self.lost} | {self.srs_delivered} | {self.orus_acked} | "
                f"{self.duplicates} | {self.redrafted} | {self.stuck} | {self.seconds:.0f} | {self.notes} |")


HEADER = ("| scenario | studies sent | instances acked/sent | instances stored | lost | SRs delivered | "
          "ORUs acked (AA) | duplicates | re-drafted studies | stuck | seconds | notes |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def print_stuck(stack: Stack, uid: str) -> None:
    """What a stuck study's jobs and deliveries are doing, and its timeline: enough to tell a lost
    message from a job left claimed or a delivery waiting on its back-off."""
    print("stuck:", stack.query(
        "SELECT j.id, j.state, j.attempts, j.error_code, j.created_at, j.started_at, j.drafted_at, d.channel, "
        "d.state, d.attempts, d.last_error_code, d.next_attempt_at "
        "FROM studies s LEFT JOIN jobs j ON j.study_id = s.id LEFT JOIN deliveries d ON d.job_id = j.id "
        "WHERE s.study_instance_uid = :uid ORDER BY j.created_at", uid=uid), flush=True)
    for row in stack.query("SELECT e.at, e.tag, e.job_id, e.detail FROM events e JOIN studies s ON s.id = e.study_id "
                           "WHERE s.study_instance_uid = :uid AND e.tag <> 'study:instance:received' ORDER BY e.id",
                           uid=uid):
        print("  event:", *row, flush=True)


def count(scenario: str, stack: Stack, studies: list[TestStudy], log: SendLog, pacs: Pacs | None, ris: Ris | None,
          started: float, done_timeout: float = 300.0, notes: str = "") -> Counts:
    """Wait (up to ``done_timeout``) for every study to be done, then count against the senders' log.

    Duplicates are per job: the same SR (SOP Instance UID) received twice by the PACS, or the same
    ORU (MSH-10) accepted twice by the RIS.  A study that got a new instance after it was complete is
    drafted again by design (a new job, a new SR); those are reported as re-drafted, not duplicated.
    """
    uids = {s.study_uid for s in studies if any(log.acked.get(p) for p in s.files)}
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not stack.all_done(uids), timeout=done_timeout, interval=1)
    stuck = stack.all_done(uids)
    for uid in sorted(stuck):
        print_stuck(stack, uid)
    # deliveries that are still arriving count on the next look; give the peers a moment to settle
    time.sleep(1)
    stored = stack.stored_instances()
    retired_studies = stack.retired_studies()
    retired = {sop for s in studies if s.study_uid in retired_studies for sop in s.sop_uids}
    acked = {sop for s in studies for p, sop in zip(s.files, s.sop_uids, strict=True) if log.acked.get(p)}
    jobs = stack.job_states()
    sr_uids_expected = {sr for uid in uids for state, sr in jobs.get(uid, []) if sr}
    srs = pacs.received() if pacs is not None else []
    sr_counts: dict[str, int] = {}
    for _study, sop in srs:
        sr_counts[sop] = sr_counts.get(sop, 0) + 1
    sr_dupes = sum(n - 1 for n in sr_counts.values() if n > 1)
    oru_counts: dict[str, int] = {}
    if ris is not None:
        ours = {cid for cid, uid in stack.hl7_control_ids().items() if uid in uids}
        for control_id, _accession in ris.accepted():
            if control_id in ours:
                oru_counts[control_id] = oru_counts.get(control_id, 0) + 1
    oru_dupes = sum(n - 1 for n in oru_counts.values() if n > 1)
    redrafted = sum(1 for uid in uids if len(jobs.get(uid, [])) > 1)
    missing = acked - set(stored) - retired
    if retired & acked:
        notes = f"{notes}; retention removed {len(retired_studies)} delivered studies ({len(retired & acked)} instances)"
    if missing:
        recorded = {uid for (uid,) in stack.query("SELECT sop_instance_uid FROM instances") if uid in missing}
        print(f"lost: {len(missing)} acknowledged instances not stored ({len(recorded)} of them have a row "
              "but no file)", flush=True)
    result = Counts(
        scenario=scenario,
        studies_sent=len(studies),
        instances_sent=sum(len(s.files) for s in studies),
        instances_acked=len(acked),
        instances_stored=len(set(stored) & {sop for s in studies for sop in s.sop_uids}),
        lost=len(missing),
        srs_delivered=len(set(sr_counts) & sr_uids_expected) if pacs is not None else 0,
        sr_duplicates=sr_dupes,
        orus_acked=len(oru_counts),
        oru_duplicates=oru_dupes,
        redrafted=redrafted,
        stuck=len(stuck),
        seconds=time.monotonic() - started,
        notes=notes,
    )
    print(f"\n{HEADER}\n{result.row()}\n", flush=True)
    return result


def check(result: Counts, *, pacs: bool = True, ris: bool = True) -> None:
    """The targets of issue 5: nothing lost, nothing duplicated, nothing stuck, everything delivered."""
    assert result.instances_acked == result.instances_sent, result
    assert result.lost == 0, result
    assert result.duplicates == 0, result
    assert result.stuck == 0, result
    if pacs:
        assert result.srs_delivered >= result.studies_sent, result
    if ris:
        assert result.orus_acked >= result.studies_sent, result


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace (or add) the ``name`` section of RESULTS.md, leaving the other sections as they are."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else "# Reliability results\n"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)

