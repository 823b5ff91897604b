"""A drafting worker that cannot see the storage folder still drafts every study (issue 25).

The service runs as separate processes on PostgreSQL and RabbitMQ, as on several machines: the DICOM
listener, the scheduler, the io and cpu workers share the storage folder; the drafting (``gpu``)
worker runs in its own mount namespace where that folder is an empty tmpfs
(:mod:`tests.reliability.namespace`), so it has only the database, the broker and the prepared
store (``[prepared] backend`` ``database``, then ``s3`` on moto's S3 server), as a GPU machine with no
shared disk: the cpu worker prepares each job next to the files and the io worker builds the outputs
there.  dcmtk's storescu sends the studies; every study must be
drafted, its SR received by the PACS (storescp) and its ORU accepted by the RIS (python-hl7's MLLP
server), with no job failed, and the drafting worker must have seen no file of the storage folder;
then a radiologist's question, asked through the web API, is answered by that worker too.

    .venv/bin/python -m pytest -m reliability tests/reliability/test_stateless_gpu.py

Skipped, with the reason, where a mount namespace cannot be made (not root, no util-linux, a
container without CAP_SYS_ADMIN).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_port, wait_until
from tests.reliability.harness import (
    HEADER,
    Pacs,
    Ris,
    SendLog,
    Stack,
    TestStudy,
    check,
    count,
    make_studies,
    send_studies,
    write_section,
)
from tests.reliability.namespace import host_files, namespace_unavailable, start_hidden, visible_files

pytestmark = [pytest.mark.reliability, pytest.mark.postgres, pytest.mark.timeout(900)]

STUDIES, SLICES = 6, 3
FINAL = {"done", "failed", "cancelled", "needs_review", "discarded"}
BUCKET = "radassist-ns"
_rows: dict[str, str] = {}
"""This file's results table, one row per backend, written to RESULTS.md after each run."""


@dataclass(frozen=True)
class PreparedStore:
    """Where the drafting worker's inputs reach it from: never the storage folder it cannot see."""

    backend: str
    endpoint: str = ""

    def settings(self, secret_file: Path) -> dict[str, list[str]]:
        if self.backend == "database":
            return {"prepared": ['backend = "database"']}
        secret_file.write_text("test")  # a credential given as <key>_file, outside the storage folder
        return {
            "prepared": [
                'backend = "s3"',
                f's3_endpoint_url = "{self.endpoint}"',
                f's3_bucket = "{BUCKET}"',
                's3_region = "us-east-1"',
                's3_access_key_id = "test"',
                f's3_secret_access_key_file = "{secret_file}"',
            ]
        }

    def kept_jobs(self, stack: Stack) -> int:
        """How many jobs have their inputs in the store."""
        if self.backend == "database":
            return int(stack.query("SELECT count(DISTINCT job_id) FROM prepared_blobs")[0][0])
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        return len({key.split("/")[-2] for key in keys})


@pytest.fixture
def namespaces() -> None:
    """First of the test's fixtures, so a machine that cannot hide a folder skips before anything starts."""
    reason = namespace_unavailable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(params=["database", "s3"])
def store(request: pytest.FixtureRequest) -> Iterator[PreparedStore]:
    """The prepared store: PostgreSQL itself, or moto's S3 server as a process (as MinIO would be)."""
    if request.param == "database":
        yield PreparedStore("database")
        return
    server_path = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(server_path).exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    server = subprocess.Popen(
        [server_path, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    try:
        wait_for_port(port, timeout=60)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).create_bucket(Bucket=BUCKET)
        yield PreparedStore("s3", endpoint)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[tuple[Pacs, Ris]]:
    pacs, ris = Pacs(tmp_path / "pacs"), Ris()
    pacs.start()
    ris.start()
    try:
        yield pacs, ris
    finally:
        ris.close()
        pacs.close()


def _latest_states(stack: Stack, studies: list[TestStudy]) -> dict[str, str | None]:
    jobs = stack.job_states()
    return {s.study_uid: (jobs[s.study_uid][-1][0] if jobs.get(s.study_uid) else None) for s in studies}


def _settled(stack: Stack, studies: list[TestStudy]) -> bool:
    """Every study's latest job is final: done, or a failure that waiting will not mend."""
    return all(state in FINAL for state in _latest_states(stack, studies).values())


def _ask_through_the_web(stack: Stack, study_uid: str) -> tuple[str, str | None]:
    """A radiologist's question about a drafted study, asked through the web API as the study page
    does; the hidden worker answers it from the kept inputs.  Returns the turn's final state and code."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "radassist",
            "user",
            "add",
            "rad",
            "--role",
            "radiologist",
            "--password-stdin",
            "--config",
            str(stack.config),
        ],
        input="a-long-test-password\n",
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    token = stack.radassist("user", "token", "rad").stdout.strip()
    (study_id,) = stack.query("SELECT id FROM studies WHERE study_instance_uid = :uid", uid=study_uid)[0]
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.web_port}/api/studies/{study_id}/conversation",
        data=json.dumps({"question": "Is there a pleural effusion?"}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        turn_id = json.load(response)["turn_id"]

    def final() -> tuple[str, str | None] | None:
        state, code = stack.query(
            "SELECT state, error_code FROM conversation_turns WHERE id = :id", id=turn_id
        )[0]
        return (str(state), code) if state in ("answered", "failed") else None

    result: tuple[str, str | None] = wait_until(final, timeout=180, interval=0.5)
    return result


def test_drafting_worker_without_the_storage_folder_drafts_every_study(
    namespaces: None,
    postgres_url: str,
    rabbitmq_url: str,
    tiny_model: Path,
    peers: tuple[Pacs, Ris],
    store: PreparedStore,
    tmp_path: Path,
) -> None:
    pacs, ris = peers
    stack = Stack(
        tmp_path / "svc",
        database_url=postgres_url,
        broker_url=rabbitmq_url,
        model=tiny_model,
        pacs=pacs,
        ris=ris,
        extra=store.settings(tmp_path / "s3-secret"),
    )
    try:
        stack.radassist("db", "upgrade")
        stack.start("listener", "listener")
        stack.start(
            "io", "worker", "--queues", "io", "--pool", "threads", "--concurrency", "4", "--name", "io"
        )
        stack.start("cpu", "worker", "--queues", "cpu", "--concurrency", "1", "--name", "cpu")
        stack.start("beat", "beat")
        gpu, view = start_hidden(
            stack, "draft", "worker", "--queues", "gpu", "--concurrency", "1", "--name", "draft"
        )

        studies, log = make_studies(tmp_path / "studies", STUDIES, SLICES, prefix="NS"), SendLog()
        started = time.monotonic()
        send_studies(stack.dicom_port, studies, log, parallel=2)
        try:
            wait_until(lambda: _settled(stack, studies), timeout=420, interval=1)
        except TimeoutError:
            print(stack.logs())
            raise
        result = count(
            "drafting worker in a mount namespace without the storage folder",
            stack,
            studies,
            log,
            pacs,
            ris,
            started,
            done_timeout=5,
            notes=f"PostgreSQL + RabbitMQ; gpu worker under unshare -m; [prepared] backend {store.backend}",
        )
        _rows[store.backend] = result.row()
        write_section(
            "stateless-gpu",
            "## A drafting worker without the storage folder (issue 25)\n\n"
            + "\n".join([HEADER, *_rows.values()]),
        )

        # The hiding held: at its start the drafting worker saw an empty tmpfs, and it still sees
        # none of the files that the listener stored and the io worker built from.
        assert view.read_text().splitlines() == ["fstype tmpfs"], view.read_text()
        assert gpu.process.poll() is None, stack.logs()
        stored = host_files(stack.data / "instances")
        assert len(stored) == STUDIES * SLICES
        seen = visible_files(gpu.process.pid, stack.data)
        assert not [f for f in seen if f in stored or "/instances/" in f], seen

        # Each job was prepared next to the files and kept in the store, then drafted by the
        # hidden worker; its log names no path of the storage folder.
        assert store.kept_jobs(stack) == STUDIES
        gpu_log = gpu.log.read_text(errors="replace")
        assert gpu_log.count("draft stored") == STUDIES, gpu_log[-3000:]
        assert str(stack.data) not in gpu_log

        states = _latest_states(stack, studies)
        failed = stack.query(
            "SELECT state, error_code, count(*) FROM jobs WHERE state <> 'done' GROUP BY 1, 2"
        )
        assert set(states.values()) == {"done"}, f"jobs not done: {failed}"
        check(result)

        # A question about a draft is answered by the hidden worker from the kept inputs too.
        stack.start("web", "web")
        assert _ask_through_the_web(stack, studies[0].study_uid) == ("answered", None), stack.logs()
    finally:
        stack.stop_all()
