"""Questions before routine drafts: when does a question's answer start, with the drafting queue empty
and behind a backlog of drafts, on the embedded broker and on RabbitMQ?

Run: ``.venv/bin/python bench/conversation.py [--queued 50] [--batch-size 4] [--questions 3]
[--broker embedded|rabbitmq|both]``

One drafting worker (``radassist worker --queues gpu --concurrency 1``, a real Celery process) with
a scripted tiny model; each study is a chest radiograph (the JPEG 2000 sample: decoding it is most of
a draft's time here).  Questions are stored and sent exactly as the web app does
(:func:`radassist.conversation.ask.ask`, then the answer task to the broker).

* **empty queue**: a drafted study, the worker idle; each question's answer start (its first words
  saved in the database) after it was asked.
* **behind N drafts**: N jobs queued and their N messages sent; once the worker is drafting the
  first batch, a question is asked.  Its answer start is printed beside the time of the batch that was
  running when it was asked (from claiming the batch to storing its last draft) and the ratio of the
  two: the issue's figure is a ratio of about 1 -- the question waits for the batch already running,
  plus its own start, never for the queue.  Also the median batch, how many jobs were drafted before
  the answer started, and how long the whole backlog took (what the question would have waited at the
  back of the queue).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from radassist.broker import ANSWER_TASK, TASK_QUEUES, client  # noqa: E402
from radassist.config import Settings, load_settings  # noqa: E402
from radassist.conversation.ask import ask  # noqa: E402
from radassist.db.base import utcnow  # noqa: E402
from radassist.db.engine import make_sessionmaker  # noqa: E402
from radassist.db.migrate import upgrade  # noqa: E402
from radassist.db.tables import ConversationTurn, Job  # noqa: E402
from radassist.startup import prepare_embedded_broker  # noqa: E402
from radassist.states import JobState  # noqa: E402
from radassist_devtools.tiny_models import write_tiny_model  # noqa: E402
from tests.conftest import TESTDATA, wait_until  # noqa: E402
from tests.drafting.test_draft_task import add_study, cr_copy  # noqa: E402

CR = TESTDATA / "pydicom-data" / "RG1_J2KR.dcm"


def configure(work: Path, model: Path, broker_url: str, batch_size: int) -> tuple[Path, Settings]:
    config = work / "radassist.toml"
    config.write_text("\n".join([
        "[storage]", f'path = "{work / "data"}"',
        "[queue]", f'broker_url = "{broker_url}"',
        "[model]", f'name = "{model}"', 'device = "cpu"', "local_files_only = true", "image_size = 448",
        f"batch_size = {batch_size}", "max_new_tokens = 64",
        "[conversation]", "questions_per_hour = 1000", "max_turns = 200", "stream_write_interval_s = 0.1",
    ]) + "\n")
    settings = load_settings(config, environ={})
    upgrade(settings)
    prepare_embedded_broker(settings)
    return config, settings


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "radassist", "worker", "--queues", "gpu", "--concurrency", "1",
                             "--config", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def queue_jobs(sessions: sessionmaker[Session], settings: Settings, work: Path, count: int) -> list[uuid.UUID]:
    jobs = []
    with sessions() as session:
        for index in range(count):
            jobs.append(add_study(session, settings, [cr_copy(TESTDATA, work / "cr" / str(index))]).id)
    # The prepare stage (cpu queue) run here, job by job: each sends its draft message once prepared.
    from workers.app import make_celery
    from workers.tasks.prepare import prepare_for_model

    make_celery(settings)
    for job_id in jobs:
        prepare_for_model.apply(args=(str(job_id),)).get()
    return jobs


def ask_and_time(sessions: sessionmaker[Session], settings: Settings, study_id: uuid.UUID) -> ConversationTurn:
    """Ask as the web app does and wait for the answer; the answered turn."""
    with sessions.begin() as session:
        asked = ask(session, settings.conversation, study_id, "bench", "Is there a pneumothorax?", utcnow())
    assert asked.ok, asked
    client(settings).send_task(ANSWER_TASK, args=[str(asked.turn_id)], queue=TASK_QUEUES[ANSWER_TASK])

    def answered() -> ConversationTurn | None:
        with sessions() as session:
            turn = session.get(ConversationTurn, asked.turn_id)
            return turn if turn is not None and turn.answered_at is not None else None

    turn = wait_until(answered, timeout=600, interval=0.05)
    assert turn.state == "answered", (turn.error_code, turn.error_message)
    return turn


def seconds(start: dt.datetime, end: dt.datetime | None) -> float:
    assert end is not None
    return (end - start).total_seconds()


def run(broker: str, broker_url: str, model: Path, args: argparse.Namespace) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-conversation-{broker}-"))
    config, settings = configure(work, model, broker_url, args.batch_size)
    sessions = make_sessionmaker(settings)
    worker = start_worker(config, work / "worker.log")
    try:
        [first] = queue_jobs(sessions, settings, work, 1)
        wait_until(lambda: job_state(sessions, first) in (JobState.DRAFTED, JobState.DELIVERING), timeout=300)
        with sessions() as session:
            study_id = session.scalar(select(Job.study_id).where(Job.id == first))
        assert study_id is not None
        empty = [seconds(t.asked_at, t.first_text_at) for t in
                 (ask_and_time(sessions, settings, study_id) for _ in range(args.questions))]
        backlog = queue_jobs(sessions, settings, work, args.queued)
        started = time.monotonic()
        wait_until(lambda: job_state(sessions, backlog[0]) not in (JobState.QUEUED, JobState.PREPARED), timeout=300,
                   interval=0.02)
        turn = ask_and_time(sessions, settings, study_id)
        behind = seconds(turn.asked_at, turn.first_text_at)
        with sessions() as session:
            before = session.scalar(select(func.count()).select_from(Job).where(
                Job.id.in_(backlog), Job.drafted_at <= turn.first_text_at)) or 0
        wait_until(lambda: all(job_state(sessions, j) not in (JobState.QUEUED, JobState.PREPARED, JobState.DRAFTING)
                               for j in backlog), timeout=3600, interval=0.5)
        backlog_s = time.monotonic() - started
        with sessions() as session:  # a run: the jobs it claimed (one started_at, all its batches), until the last stored
            batches = {s: seconds(s, d) for s, d in session.execute(
                select(Job.started_at, func.max(Job.drafted_at)).where(Job.id.in_(backlog)).group_by(Job.started_at))
                if s and d}
            running = session.scalar(select(Job.started_at).where(Job.id == backlog[0]))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        sessions.kw["bind"].dispose()
    assert running is not None
    figures = {"empty": statistics.median(empty), "behind": behind, "running": batches[running],
               "ratio": behind / batches[running], "median_batch": statistics.median(batches.values()),
               "drafted_before": float(before), "backlog": backlog_s}
    shutil.rmtree(work, ignore_errors=True)
    return figures


def job_state(sessions: sessionmaker[Session], job_id: uuid.UUID) -> JobState | None:
    with sessions() as session:
        return session.scalar(select(Job.state).where(Job.id == job_id))


def rabbitmq_vhost() -> tuple[str, str]:
    vhost = f"bench-conversation-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True, timeout=60)
    return vhost, f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queued", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--questions", type=int, default=3, help="questions timed with the queue empty")
    parser.add_argument("--broker", choices=["embedded", "rabbitmq", "both"], default="both")
    args = parser.parse_args()
    model = write_tiny_model(Path(tempfile.mkdtemp(prefix="bench-conversation-model-")) / "gemma3")
    brokers = ["embedded", "rabbitmq"] if args.broker == "both" else [args.broker]
    print(f"{args.queued} drafts queued, batches of {args.batch_size}, one drafting worker, tiny model, CR 1955x1841 J2K")
    print(f"{'broker':<10} {'answer start, queue empty':>26} {f'behind {args.queued} drafts':>18} "
          f"{'running batch':>14} {'ratio':>6} {'median batch':>13} {'drafted first':>14} {'whole backlog':>14}")
    for broker in brokers:
        vhost = None
        if broker == "rabbitmq":
            vhost, url = rabbitmq_vhost()
        else:
            url = ""
        try:
            f = run(broker, url, model, args)
        finally:
            if vhost:
                subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)
        print(f"{broker:<10} {f['empty']:>24.2f} s {f['behind']:>16.2f} s {f['running']:>12.2f} s {f['ratio']:>6.2f} "
              f"{f['median_batch']:>11.2f} s {int(f['drafted_before']):>9} jobs {f['backlog']:>12.1f} s")


if __name__ == "__main__":
    main()
