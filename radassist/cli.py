"""The one command, ``radassist``: run everything, or each part on its own machine.

Every subcommand takes ``--config FILE`` (or ``RADASSIST_CONFIG``); ``RADASSIST_<SECTION>_<KEY>``
environment variables override the file.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from radassist.config import Settings, load_settings
from radassist.errors import ConfigError
from radassist.logging import configure_logging

logger = logging.getLogger("radassist.cli")


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    configure_logging(settings.logging.level)
    return settings


def _part(args: argparse.Namespace, *, check_unsynced: bool = True) -> Settings:
    """Settings of a part that serves: owner-only files, the root warning, a current schema
    (:mod:`radassist.startup`; a schema not current stops it with exit status 2).
    ``check_unsynced=False``: the part runs the read-back of listed instances itself (the listener)."""
    from radassist import startup

    settings = _settings(args)
    startup.prepare(settings, check_unsynced=check_unsynced)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    """All in one: migrate, then listener, drafting worker, delivery worker + scheduler, cpu worker
    (preparing pictures, measuring), web app."""
    from radassist import startup
    from radassist.db.migrate import upgrade

    settings = _settings(args)
    startup.prepare(settings, check_schema=False)
    upgrade(settings)
    startup.check_unsynced_instances(settings, confirm=True)  # nothing runs yet: no flush in flight
    startup.prepare_embedded_broker(settings)
    for hint in startup.first_start_hints(settings, args.config):
        logger.warning("%s", hint)
    base = [sys.executable, "-m", "radassist"]
    config = ["--config", str(args.config)] if args.config else []
    parts = {
        "listener": base + ["listener", *config],
        "draft-worker": base + ["worker", *config, "--queues", "gpu", "--concurrency", "1", "--name", "draft"],
        "delivery-worker": base
        + ["worker", *config, "--queues", "io", "--pool", "threads", "--concurrency", "4", "--beat", "--name", "io"],
        "cpu-worker": base + ["worker", *config, "--queues", "cpu", "--concurrency", "2", "--name", "cpu"],
        "web": base + ["web", *config],
    }
    if settings.hl7.listen_port:
        parts["hl7-listener"] = base + ["hl7-listener", *config]
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = {**os.environ, startup.RUN_CHILD_ENV: "1"}
    for name, argv in parts.items():
        # Each child gets its own process group, so a terminal's Ctrl-C reaches only us and we stop
        # them in order.
        children[name] = subprocess.Popen(argv, start_new_session=True, env=env)
    logger.info(
        "RadAssist running: DICOM %s on %s:%d, worklist http://%s:%d/",
        settings.dicom.ae_title, settings.dicom.host, settings.dicom.port, settings.web.host, settings.web.port,
    )
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                logger.error("%s exited with status %s; stopping the others", name, child.returncode)
                stopping, exit_code = True, 1
                break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children.values():
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    logger.info("RadAssist stopped")
    return exit_code


def cmd_hl7_listener(args: argparse.Namespace) -> int:
    """The inbound MLLP listener: orders and signed reports from the RIS."""
    settings = _part(args)
    from hl7_node.server import run_listener

    run_listener(settings)
    return 0


def cmd_listener(args: argparse.Namespace) -> int:
    settings = _part(args, check_unsynced=False)  # run_listener reads them back, and unlists the whole
    from dicom_node.server import run_listener

    run_listener(settings)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from radassist.startup import prepare_embedded_broker

    settings = _part(args)
    prepare_embedded_broker(settings)
    from workers import signals  # noqa: F401  (connects the worker hooks)
    from workers.app import make_celery

    app = make_celery(settings)
    # Celery's own INFO lines (every sweep received and succeeded) drown the pipeline's.
    celery_level = "DEBUG" if settings.logging.level == "DEBUG" else "WARNING"
    argv = [
        "worker",
        "--loglevel", celery_level,
        "--queues", args.queues,
        "--concurrency", str(args.concurrency),
        "--pool", args.pool,
        "--hostname", f"{args.name}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    if args.beat:
        argv.append("--beat")
    app.worker_main(argv)
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    from radassist.startup import prepare_embedded_broker

    settings = _part(args)
    prepare_embedded_broker(settings)
    from workers.app import make_celery

    make_celery(settings).start(["beat", "--loglevel", settings.logging.level])
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    settings = _part(args)
    import uvicorn

    from radassist.web.app import create_app

    uvicorn.run(create_app(settings), host=settings.web.host, port=settings.web.port, log_config=None)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from radassist import startup
    from radassist.db import migrate

    settings = _settings(args)
    startup.secure_data_folder(settings)
    if args.action == "upgrade":
        migrate.upgrade(settings)
        print("database schema is up to date")
    else:
        migrate.check(settings)
        print("tables match the migrations")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import json

    if args.action == "example":
        from radassist.config.example import render_example

        print(render_example(), end="")
        return 0
    settings = load_settings(args.config)
    print(json.dumps(settings.redacted(), indent=2))  # every secret masked, URLs' passwords too
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    """Local users of the web app: add (or reset) one, or issue an API token for one."""
    import getpass

    from radassist.auth.users import create_user, issue_api_token
    from radassist.db.engine import make_sessionmaker

    settings = _settings(args)
    sessions = make_sessionmaker(settings)
    try:
        if args.action == "add":
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            else:
                password = getpass.getpass("Password: ")
                if getpass.getpass("Again: ") != password:
                    print("radassist: the passwords differ", file=sys.stderr)
                    return 2
            try:
                with sessions.begin() as session:
                    create_user(session, args.name, password, args.role)
            except ValueError as exc:
                print(f"radassist: {exc}", file=sys.stderr)
                return 2
            print(f"user {args.name} ({args.role}) saved")
        else:
            try:
                with sessions.begin() as session:
                    token = issue_api_token(session, args.name)
            except LookupError:
                print(f"radassist: no user {args.name}", file=sys.stderr)
                return 2
            print(token)  # shown once; only its hash is kept
    finally:
        sessions.kw["bind"].dispose()
    return 0


def cmd_test_destinations(args: argparse.Namespace) -> int:
    """Connection test of each configured destination (C-ECHO, Orthanc ``/system``, QIDO-RS)."""
    from radassist.errors import RadAssistError
    from radassist.pacs.targets import test_connection

    settings = load_settings(args.config)
    chosen = [d for d in settings.destinations if not args.names or d.name in args.names]
    unknown = set(args.names) - {d.name for d in chosen}
    if unknown:
        print(f"radassist: no destination named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    failed = 0
    for dest in chosen:
        try:
            test_connection(dest, calling_ae_title=settings.dicom.ae_title)
        except RadAssistError as exc:
            failed += 1
            print(f"{dest.name} ({dest.kind}): FAILED [{exc.code}] {exc.message}")
        else:
            print(f"{dest.name} ({dest.kind}): ok")
    return 1 if failed else 0


def cmd_docs(args: argparse.Namespace) -> int:
    """Generated documents (conformance statement, HL7 interface): write them, or check they are current."""
    from radassist import specs

    root = Path(args.root)
    if args.action == "write":
        for path in specs.write(root):
            print(f"wrote {path}")
        return 0
    drifted = specs.drifted(root)
    for path in drifted:
        print(f"radassist: {path} differs from the code; run `radassist docs write`", file=sys.stderr)
    return 1 if drifted else 0


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from radassist_devtools.tiny_models import write_tiny_model

    folder = write_tiny_model(Path(args.folder), arch=args.arch)
    print(f"tiny randomly initialised {args.arch} model written to {folder} (for tests and demos only)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from radassist.evaluation.cli import add_eval_parser

    parser = argparse.ArgumentParser(prog="radassist", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=os.environ.get("RADASSIST_CONFIG"), help="TOML settings file")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", parents=[common], help="run every part in one command").set_defaults(func=cmd_run)
    sub.add_parser("listener", parents=[common], help="the DICOM listener").set_defaults(func=cmd_listener)
    sub.add_parser(
        "hl7-listener", parents=[common], help="the inbound HL7 MLLP listener (orders, signed reports)"
    ).set_defaults(func=cmd_hl7_listener)
    worker = sub.add_parser("worker", parents=[common], help="a Celery worker")
    worker.add_argument("--queues", default="gpu,io,cpu",
                        help="gpu (drafting, questions), io (priors, outputs, delivery), cpu (preparing pictures, measuring drafts), or several")
    worker.add_argument("--concurrency", type=int, default=1, help="processes or threads (1 per GPU for drafting)")
    worker.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    worker.add_argument("--beat", action="store_true", help="also run the scheduler (one per installation)")
    worker.add_argument("--name", default="radassist", help="worker name shown in monitoring")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("beat", parents=[common], help="the scheduler (sweeps)").set_defaults(func=cmd_beat)
    sub.add_parser("web", parents=[common], help="the worklist web app and API").set_defaults(func=cmd_web)
    db = sub.add_parser("db", parents=[common], help="database schema")
    db.add_argument("action", choices=["upgrade", "check"])
    db.set_defaults(func=cmd_db)
    config = sub.add_parser("config", parents=[common], help="show settings")
    config.add_argument("action", choices=["check", "example"], help="check: print the effective settings (secrets masked); example: print a documented config file")
    config.set_defaults(func=cmd_config)
    user = sub.add_parser("user", parents=[common], help="web users: add one (or reset its password), or issue an API token")
    user.add_argument("action", choices=["add", "token"])
    user.add_argument("name")
    user.add_argument("--role", choices=["admin", "radiologist", "viewer"], default="viewer",
                      help="for add (default viewer): viewer looks, radiologist also reviews drafts, admin also acts")
    user.add_argument("--password-stdin", action="store_true", help="for add: read the password from standard input")
    user.set_defaults(func=cmd_user)
    dests = sub.add_parser("test-destinations", parents=[common], help="connection test of the SR destinations")
    dests.add_argument("names", nargs="*", help="destination names (default: all)")
    dests.set_defaults(func=cmd_test_destinations)
    docs = sub.add_parser("docs", help="the documents generated from the code (conformance statement, HL7 spec)")
    docs.add_argument("action", choices=["write", "check"])
    docs.add_argument("--root", default=".", help="the repository folder holding docs/ (default: here)")
    docs.set_defaults(func=cmd_docs)
    add_eval_parser(sub, common)
    tiny = sub.add_parser("make-tiny-model", parents=[common], help="write a tiny random VLM for tests and demos")
    tiny.add_argument("folder")
    tiny.add_argument("--arch", default="gemma3")
    tiny.set_defaults(func=cmd_make_tiny_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"radassist: {exc.message}", file=sys.stderr)
        return 2
