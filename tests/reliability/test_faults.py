"""Fault injection with real processes (issue 5): kill, restart and starve parts of the service while
dcmtk storescu senders push studies on parallel associations, then count against what the senders
were told.  Target in every scenario: 0 lost, 0 duplicated, 0 stuck.

    .venv/bin/python -m pytest -m reliability tests/reliability

Outages last ``RADASSIST_RELIABILITY_OUTAGE_SECONDS`` (default 60).  Each test has a private
PostgreSQL cluster, a private redis-server broker, a storescp PACS and an MLLP RIS; the service
runs as separate ``radassist listener|worker|beat|web`` processes so one can be killed.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.reliability.conftest import Rig
from tests.reliability.harness import (
    Counts,
    SendLog,
    Stack,
    TestStudy,
    check,
    count,
    make_studies,
    outage_seconds,
    resend_until_acked,
    send_paced,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1200)]

STUDIES, SLICES, PARALLEL = 24, 6, 4


def _studies(rig: Rig, prefix: str, count_: int = STUDIES, slices: int = SLICES) -> list[TestStudy]:
    return make_studies(rig.root / "studies", count_, slices, prefix=prefix)


def _drafting(rig: Rig) -> bool:
    assert rig.stack is not None
    return bool(rig.stack.query("SELECT 1 FROM jobs WHERE state = 'drafting'"))


def _finish(name: str, rig: Rig, studies: list, log: SendLog, started: float, record: list[Counts],
            notes: str = "", ris: bool = True) -> Counts:
    assert rig.stack is not None
    resend_until_acked(rig.stack.dicom_port, studies, log, timeout=240)
    result = count(name, rig.stack, studies, log, rig.pacs, rig.ris if ris else None, started,
                   done_timeout=420, notes=notes)
    record.append(result)
    if result.stuck:
        print(rig.stack.logs())
    return result


# --- 1. a drafting worker killed mid-draft -------------------------------------------------------


def test_pool_process_killed_mid_draft_job_is_taken_over(rig: Rig, record: list[Counts]) -> None:
    """SIGKILL of the process running the model: Celery rejects the message (acks_late,
    reject_on_worker_lost), the broker redelivers it, and a worker takes the drafting job over.
    The hard time limit stays at its default (30 min) so the sweep cannot be what rescues it."""
    stack = rig.service(draft_workers=1)
    studies, log = _studies(rig, "KC"), SendLog()
    started = time.monotonic()
    senders = send_paced(stack.dicom_port, studies, log, seconds=20, parallel=PARALLEL)
    kills = 0
    for _ in range(2):  # twice: once on the first worker, once on whoever holds a job next
        wait_until(lambda: _drafting(rig), timeout=240, interval=0.05)
        for name in [n for n in stack.parts if n.startswith("draft-")]:
            for pid in stack.pool_children(name):
                subprocess.run(["kill", "-KILL", str(pid)], check=False)
                kills += 1
        if "draft-1" not in stack.parts:
            stack.start("draft-1", "worker", "--queues", "gpu", "--concurrency", "1", "--name", "draft1")
        time.sleep(3)
    senders.join()
    result = _finish("1a. drafting pool process SIGKILLed mid-draft (x2)", rig, studies, log, started, record,
                     notes=f"{kills} pool processes killed; redelivered message taken over")
    check(result)
    taken = stack.query("SELECT count(*) FROM events WHERE detail::text LIKE '%taken over%'")
    assert taken[0][0] >= 1, "no job was taken over from the killed worker"


def _worker_killed_second_worker_finishes(rig: Rig, record: list[Counts], prefix: str, title: str, notes: str,
                                          queue: list[str]) -> Stack:
    """SIGKILL of the whole drafting worker mid-draft, never started again; a second worker under
    another name starts at once.  The stack, for the caller's own checks."""
    stack = rig.service(draft_workers=1, extra={"queue": queue})
    studies, log = _studies(rig, prefix), SendLog()
    started = time.monotonic()
    senders = send_paced(stack.dicom_port, studies, log, seconds=20, parallel=PARALLEL)
    wait_until(lambda: _drafting(rig), timeout=240, interval=0.05)
    stack.kill("draft-0")
    stack.start("draft-1", "worker", "--queues", "gpu", "--concurrency", "1", "--name", "draft1")
    senders.join()
    check(_finish(title, rig, studies, log, started, record, notes=notes))
    return stack


def test_worker_killed_mid_draft_second_worker_finishes(rig: Rig, record: list[Counts]) -> None:
    """SIGKILL of a whole drafting worker (main process and pool): on Redis its unacknowledged
    message waits for the visibility timeout, so the sweep hands the drafting jobs back once the
    hard time limit has passed (30 s here) and a second worker drafts them."""
    _worker_killed_second_worker_finishes(
        rig, record, "KW", "1b. drafting worker SIGKILLed mid-draft",
        "second worker; sweep hands back after the 30 s time limit + 60 s", ["job_time_limit_seconds = 30"])


def test_worker_killed_mid_draft_and_restarted_hands_its_jobs_back(rig: Rig, record: list[Counts]) -> None:
    """SIGKILL of a whole drafting worker, started again under its name: at start it hands back the
    jobs it held (``jobs.held_by``).  The hard time limit stays at its default (30 min) and Redis
    keeps the message for its visibility timeout (an hour), so neither can be what rescues them."""
    stack = rig.service(draft_workers=1)
    studies, log = _studies(rig, "KR"), SendLog()
    started = time.monotonic()
    senders = send_paced(stack.dicom_port, studies, log, seconds=20, parallel=PARALLEL)
    wait_until(lambda: _drafting(rig), timeout=240, interval=0.05)
    stack.restart("draft-0")
    senders.join()
    result = _finish("1c. drafting worker SIGKILLed mid-draft, restarted", rig, studies, log, started, record,
                     notes="its jobs handed back as it started again")
    check(result)
    handed = stack.query("SELECT count(*) FROM events WHERE detail::text LIKE '%its worker restarted%'")
    assert handed[0][0] >= 1, "the restarted worker handed nothing back"


def test_worker_killed_mid_draft_never_back_its_jobs_go_to_another(rig: Rig, record: list[Counts]) -> None:
    """SIGKILL of a whole drafting worker that never comes back (its machine lost): it stops
    reporting in, and once it has been silent for ``worker_lost_after_seconds`` (15 s here) the
    sweep hands its jobs back to a second worker under another name.  The hard time limit stays at
    its default (30 min) and Redis keeps the message for an hour, so neither can be what rescues them."""
    stack = _worker_killed_second_worker_finishes(
        rig, record, "KN", "1d. drafting worker SIGKILLed mid-draft, never back",
        "second worker; sweep hands back after 15 s of silence",
        ["worker_heartbeat_seconds = 2", "worker_lost_after_seconds = 15"])
    handed = stack.query("SELECT count(*) FROM events WHERE detail::text LIKE '%its worker stopped answering%'")
    assert handed[0][0] >= 1, "nothing was handed back from the silent worker"


# --- 2. the broker restarted during a burst -------------------------------------------------------


def test_broker_restarted_during_burst(rig: Rig, record: list[Counts]) -> None:
    outage = outage_seconds()
    stack = rig.service(draft_workers=1)
    studies, log = _studies(rig, "BR"), SendLog()
    started = time.monotonic()
    senders = send_paced(stack.dicom_port, studies, log, seconds=20, parallel=PARALLEL)
    wait_until(lambda: _drafting(rig), timeout=240, interval=0.05)
    rig.redis.stop()
    time.sleep(outage)
    rig.redis.start()
    senders.join()
    result = _finish("2. broker (Redis) restarted during a burst", rig, studies, log, started, record,
                     notes=f"down {outage:.0f} s")
    check(result)


# --- 3. PostgreSQL restarted during a burst -------------------------------------------------------


def test_database_restarted_during_burst(rig: Rig, record: list[Counts]) -> None:
    """The listener must answer failure while the database is down (never Success without the row);
    what it refused is sent again afterwards, as a PACS would.  The outage is longer than
    ``worker_lost_after_seconds`` (15 s here): every worker is silent for its length, and none may
    have its jobs handed back (drafted twice) for it."""
    outage = outage_seconds()
    stack = rig.service(draft_workers=1, extra={"queue": ["worker_heartbeat_seconds = 2", "worker_lost_after_seconds = 15"]})
    studies, log = _studies(rig, "DB"), SendLog()
    started = time.monotonic()
    senders = send_paced(stack.dicom_port, studies, log, seconds=max(20, outage / 2), parallel=PARALLEL)
    wait_until(lambda: sum(log.acked.values()) >= len(studies) * SLICES // 4, timeout=120, interval=0.05)
    rig.pg.stop("immediate")
    down_at = time.monotonic()
    senders.join()
    refused_while_down = log.failed_responses + log.failed_associations
    refusals = f"{log.failed_responses} instance refusals, {log.failed_associations} failed associations"
    time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
    rig.pg.start()
    result = _finish("3. PostgreSQL restarted during a burst", rig, studies, log, started, record,
                     notes=f"down {outage:.0f} s; while down: {refusals}; re-sent after; workers silent "
                           "for longer than worker_lost_after_seconds (15 s)")
    assert refused_while_down > 0, "nothing was sent while the database was down"
    check(result)
    handed = stack.query("SELECT count(*) FROM events WHERE detail::text LIKE '%its worker stopped answering%'")
    assert handed[0][0] == 0, f"{handed[0][0]} jobs of live workers were handed back after the outage"


# --- 4. the RIS and the PACS down, the RIS answering AE --------------------------------------------


def _burst_through_outage(
    rig: Rig, prefix: str, fault: Callable[[], None], repair: Callable[[], None]
) -> tuple[list[TestStudy], SendLog, float, float]:
    """A paced burst with ``fault`` applied at its start and ``repair``-ed after the outage."""
    outage = outage_seconds()
    stack = rig.service(draft_workers=1)
    studies, log = _studies(rig, prefix), SendLog()
    started = time.monotonic()
    fault()
    senders = send_paced(stack.dicom_port, studies, log, seconds=20, parallel=PARALLEL)
    time.sleep(outage)
    repair()
    senders.join()
    return studies, log, started, outage


def test_ris_down_then_up(rig: Rig, record: list[Counts]) -> None:
    studies, log, started, outage = _burst_through_outage(rig, "RD", rig.ris.stop, rig.ris.start)
    check(_finish("4a. RIS down, then up", rig, studies, log, started, record, notes=f"down {outage:.0f} s"))


def test_ris_answers_ae_then_aa(rig: Rig, record: list[Counts]) -> None:
    def answer(code: str) -> Callable[[], None]:
        return lambda: setattr(rig.ris, "answer", code)

    studies, log, started, outage = _burst_through_outage(rig, "AE", answer("AE"), answer("AA"))
    result = _finish("4b. RIS answers AE, then AA", rig, studies, log, started, record,
                     notes=f"AE for {outage:.0f} s ({sum(1 for m in rig.ris.messages if m[2] == 'AE')} AE sent)")
    assert any(code == "AE" for *_, code in rig.ris.messages)
    check(result)


def test_pacs_down_then_up(rig: Rig, record: list[Counts]) -> None:
    studies, log, started, outage = _burst_through_outage(rig, "PD", rig.pacs.stop, rig.pacs.start)
    check(_finish("4c. PACS (storescp) down, then up", rig, studies, log, started, record,
                  notes=f"down {outage:.0f} s"))


def test_delivery_worker_killed_mid_send_and_restarted_sends_again(rig: Rig, record: list[Counts]) -> None:
    """SIGKILL of the io worker while ORUs wait for the RIS's ACK (the RIS reads them and does not
    answer), then the worker started again under its name: as it starts it hands back the deliveries
    it was sending (``deliveries.held_by``), instead of their waiting three ACK timeouts for the sweep."""
    stack = rig.service(draft_workers=1)
    rig.ris.answer = None  # read, never acknowledged: the ORUs stay sending
    studies, log = _studies(rig, "KS"), SendLog()
    started = time.monotonic()
    senders = send_paced(stack.dicom_port, studies, log, seconds=20, parallel=PARALLEL)
    wait_until(lambda: stack.query("SELECT 1 FROM deliveries WHERE channel = 'hl7' AND state = 'sending'"),
               timeout=240, interval=0.05)
    rig.ris.answer = "AA"
    stack.restart("io")
    senders.join()
    result = _finish("4d. delivery worker SIGKILLed mid-send, restarted", rig, studies, log, started, record,
                     notes="what it was sending handed back as it started again")
    handed = dict(stack.query(
        "SELECT d.channel, count(*) FROM events e JOIN deliveries d ON d.id::text = e.detail->>'delivery'"
        " WHERE e.tag = 'delivery:requeued' AND e.detail->>'reason' = 'its worker restarted' GROUP BY d.channel"))
    assert handed.get("hl7", 0) >= 1, f"the restarted io worker handed back no ORU: {handed}"
    # An SR the PACS had stored as the worker died is stored again, with the same SOP Instance UID: a
    # delivery is sent at least once.  The ORUs were never acknowledged, so none is accepted twice.
    assert result.sr_duplicates <= handed.get("sr", 0), (result, handed)
    result.notes += f"; {handed} handed back, {result.sr_duplicates} SRs stored again (same SOP Instance UID)"
    check(dataclasses.replace(result, sr_duplicates=0))


# --- 5. the listener killed mid-association --------------------------------------------------------


def test_listener_killed_mid_association_and_restarted(rig: Rig, record: list[Counts]) -> None:
    stack = rig.service(draft_workers=1)
    studies, log = _studies(rig, "LK", slices=20), SendLog()
    started = time.monotonic()
    senders = send_paced(stack.dicom_port, studies, log, seconds=20, parallel=PARALLEL)
    kills = 0
    for _ in range(2):
        acked = sum(log.acked.values())
        wait_until(lambda a=acked: sum(log.acked.values()) >= a + 30, timeout=120, interval=0.02)
        stack.kill("listener", signal.SIGKILL)
        kills += 1
        time.sleep(2)
        stack.restart("listener")
    senders.join()
    result = _finish("5. listener SIGKILLed mid-association, restarted", rig, studies, log, started, record,
                     notes=f"{kills} kills; {log.failed_associations} associations broken, re-sent")
    assert log.failed_associations > 0, "no association was cut"
    check(result)


# --- 6. the low-disk watermark crossed during a burst -----------------------------------------------


def test_disk_threshold_crossed_during_burst(rig: Rig, record: list[Counts]) -> None:
    """The watermark ([storage] min_free_bytes) is set 2 GiB below the free space at start; a 6 GiB
    ballast file then pushes free space under it mid-burst, and is removed after the outage.  The
    listener must refuse (0xA700 or A-ASSOCIATE-RJ) while low, and accept again after."""
    outage = outage_seconds()
    free = shutil.disk_usage(rig.root).free
    margin, ballast_size = 2 << 30, 6 << 30
    if free < ballast_size + (4 << 30):
        pytest.skip("not enough free disk for the ballast file")
    stack = rig.service(draft_workers=1, extra={"storage": [f"min_free_bytes = {free - margin}"]})
    studies, log = _studies(rig, "DK"), SendLog()
    started = time.monotonic()
    senders = send_paced(stack.dicom_port, studies, log, seconds=max(20, outage / 2), parallel=PARALLEL)
    wait_until(lambda: sum(log.acked.values()) >= len(studies) * SLICES // 4, timeout=120, interval=0.05)
    ballast = Path(rig.root / "ballast.bin")
    subprocess.run(["fallocate", "-l", str(ballast_size), str(ballast)], check=True)
    low_at = time.monotonic()
    try:
        senders.join()
        refused_while_low = log.failed_responses + log.failed_associations
        refusals = f"{log.failed_responses} instance refusals, {log.failed_associations} failed associations"
        time.sleep(max(0.0, outage - (time.monotonic() - low_at)))
    finally:
        ballast.unlink(missing_ok=True)
    result = _finish("6. low-disk watermark crossed during a burst", rig, studies, log, started, record,
                     notes=f"low {outage:.0f} s; while low: {refusals}; re-sent after")
    assert refused_while_low > 0, "nothing was refused while the disk was low"
    check(result)
