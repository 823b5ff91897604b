"""Soak benchmark: the whole service as separate processes under a steady load for a long time.

    .venv/bin/python bench/soak.py [--duration 600] [--parallel 8] [--studies 400] [--slices 8]

Starts a private PostgreSQL cluster and a private redis-server (the broker), dcmtk's storescp as the
PACS and python-hl7's MLLP server as the RIS, then ``radassist listener``, a drafting worker (the
tiny random Gemma 3), a delivery worker, ``radassist beat`` and ``radassist web``.  Over
``--duration`` seconds it sends ``--studies`` small CT studies (``--slices`` instances each) with
dcmtk's storescu on ``--parallel`` associations at a time, paced evenly, then waits for every study
to be done.

Prints throughput, the resident memory (RSS, with pool children) of each process after the first
study is done and at the end, and the same counts as the fault-injection suite: acknowledged,
stored, lost, SRs delivered, ORUs acknowledged, duplicates, stuck.  The stated bound on growth is
``--rss-bound`` (default: 25 % or 64 MiB, whichever is larger, per process); the exit status is 1
when a count or a bound is missed.  ``--results`` writes the figures into
tests/reliability/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import wait_until  # noqa: E402
from tests.reliability.harness import (  # noqa: E402
    HEADER,
    Pacs,
    PrivatePostgres,
    PrivateRedis,
    Ris,
    SendLog,
    Stack,
    count,
    make_studies,
    resend_until_acked,
    rss_kib,
    storescu_outcomes,
    write_section,
)

PARTS = ("listener", "draft-0", "io", "beat", "web")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of sending (default 600)")
    parser.add_argument("--parallel", type=int, default=8, help="parallel storescu associations")
    parser.add_argument("--studies", type=int, default=400)
    parser.add_argument("--slices", type=int, default=8, help="instances per study")
    parser.add_argument("--rss-bound-percent", type=float, default=25.0)
    parser.add_argument("--rss-bound-mib", type=float, default=64.0)
    parser.add_argument("--results", action="store_true", help="write the figures into tests/reliability/RESULTS.md")
    args = parser.parse_args()

    from radassist_devtools.tiny_models import write_tiny_model

    with tempfile.TemporaryDirectory(prefix="radassist-soak-") as tmp:
        root = Path(tmp)
        model = write_tiny_model(root / "model", arch="gemma3")
        print(f"generating {args.studies} studies x {args.slices} instances", flush=True)
        studies = make_studies(root / "studies", args.studies, args.slices, prefix="SK")
        pg = PrivatePostgres(root / "pg").init()
        pg.start()
        redis = PrivateRedis(root / "redis")
        redis.start()
        pacs, ris = Pacs(root / "pacs"), Ris()
        pacs.start()
        ris.start()
        stack = Stack(root / "svc", database_url=pg.create_database("soak"), broker_url=redis.url, model=model,
                      pacs=pacs, ris=ris)
        try:
            stack.start_all()
            # Warm up: one study through the whole path, so "start" RSS has the model loaded.
            warm = make_studies(root / "warm", 1, 2, prefix="WU")
            warm_log = SendLog()
            outcomes, ok = storescu_outcomes(stack.dicom_port, warm[0].files)
            warm_log.record(outcomes, ok)
            wait_until(lambda: not stack.all_done({warm[0].study_uid}), timeout=300, interval=1)
            rss_start = {name: rss_kib(stack.parts[name].process.pid) for name in PARTS}
            print("RSS at start (KiB):", rss_start, flush=True)

            log = SendLog()
            interval = args.duration / max(args.studies, 1)
            started = time.monotonic()
            next_index = 0
            lock = threading.Lock()
            samples: list[tuple[float, dict[str, int]]] = []

            def sender() -> None:
                nonlocal next_index
                while True:
                    with lock:
                        index = next_index
                        next_index += 1
                    if index >= len(studies):
                        return
                    delay = started + index * interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    outcomes, ok = storescu_outcomes(stack.dicom_port, studies[index].files)
                    log.record(outcomes, ok)

            def sampler() -> None:
                while next_index < len(studies):
                    samples.append((time.monotonic() - started,
                                    {name: rss_kib(stack.parts[name].process.pid) for name in PARTS}))
                    time.sleep(30)

            threading.Thread(target=sampler, daemon=True).start()
            with ThreadPoolExecutor(max_workers=args.parallel) as pool:
                for _ in range(args.parallel):
                    pool.submit(sender)
            send_seconds = time.monotonic() - started
            resend_until_acked(stack.dicom_port, studies, log, timeout=120)
            result = count("soak", stack, studies, log, pacs, ris, started, done_timeout=900)
            total_seconds = time.monotonic() - started
            rss_end = {name: rss_kib(stack.parts[name].process.pid) for name in PARTS}
        finally:
            stack.stop_all()
            for thing in (ris, pacs, redis, pg):
                thing.close()

    instances = result.instances_sent
    lines = [
        f"Soak: {args.studies} studies x {args.slices} instances = {instances} instances, "
        f"{args.parallel} parallel storescu associations, paced over {args.duration:.0f} s; tiny random "
        "Gemma 3 on CPU; private PostgreSQL 15 + private Redis broker; listener, drafting worker, "
        "delivery worker, beat and web as separate processes.",
        "",
        f"- sending took {send_seconds:.0f} s ({log.acked and sum(log.acked.values()) / send_seconds:.1f} "
        f"instances/s acknowledged, {log.failed_responses} refused responses, "
        f"{log.failed_associations} failed associations)",
        f"- everything done {total_seconds:.0f} s after the first send: "
        f"{result.studies_sent / total_seconds * 60:.1f} studies/min drafted and delivered end to end",
        "",
        HEADER,
        result.row(),
        "",
        f"RSS per process (KiB, with pool children); bound: growth <= {args.rss_bound_percent:.0f} % "
        f"or {args.rss_bound_mib:.0f} MiB, whichever is larger",
        "",
        "| process | start | end | growth | within bound |",
        "|---|---|---|---|---|",
    ]
    within = True
    for name in PARTS:
        start, end = rss_start[name], rss_end[name]
        bound = max(start * args.rss_bound_percent / 100, args.rss_bound_mib * 1024)
        ok = end - start <= bound
        within &= ok
        lines.append(f"| {name} | {start} | {end} | {end - start:+d} ({(end - start) / max(start, 1) * 100:+.1f} %) | "
                     f"{'yes' if ok else 'NO'} |")
    if samples:
        lines += ["", "RSS samples every 30 s while sending (KiB): " + "; ".join(
            f"{t:.0f}s " + ",".join(f"{k}={v}" for k, v in s.items()) for t, s in samples[::4])]
    report = "\n".join(lines)
    print("\n" + report, flush=True)
    if args.results:
        write_section("soak", "## Soak (bench/soak.py)\n\n" + report)
    healthy = result.lost == 0 and result.duplicates == 0 and result.stuck == 0 and within
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
