"""``radassist hl7-listener`` as its own process: starts, answers a RIS, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import hl7
from hl7.client import MLLPClient
from sqlalchemy import select

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.migrate import upgrade
from radassist.db.tables import Order
from tests.conftest import REPO, free_port, wait_for_port
from tests.hl7.test_inbound import orm


def test_the_listener_process_stores_an_order(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    port = free_port()
    settings = make_settings(database_url=url, hl7_listen_port=str(port), hl7_listen_host="127.0.0.1")
    upgrade(settings)
    env = {
        **os.environ,
        "RADASSIST_STORAGE_PATH": str(tmp_path / "data"),
        "RADASSIST_DATABASE_URL": url,
        "RADASSIST_HL7_LISTEN_PORT": str(port),
        "RADASSIST_HL7_LISTEN_HOST": "127.0.0.1",
        "RADASSIST_HL7_ACCESSION_FIELD": "OBR-18",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "radassist", "hl7-listener"], cwd=REPO, env=env, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(port, timeout=30)
        with MLLPClient("127.0.0.1", port) as client:
            ack = hl7.parse(client.send_message(orm("CLI-1")).decode("utf-8").strip("\x0b\x1c\r"))
        assert str(ack.segment("MSA")[1]) == "AA" and str(ack.segment("MSA")[2]) == "CLI-1"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    assert b"SENTINEL" not in stderr and b"SENTACC" not in stderr
    sessions = make_sessionmaker(settings)
    with sessions() as session:
        assert session.scalars(select(Order.control_id)).all() == ["CLI-1"]
    sessions.kw["bind"].dispose()


def test_the_listener_process_loads_no_model_code() -> None:
    code = "import json, sys, hl7_node.__main__, hl7_node.server; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "hl7_node.server" in loaded and "radassist.ris.receive" in loaded
    heavy = ("torch", "transformers", "pynetdicom")
    assert sorted(m for m in loaded if m.split(".")[0] in heavy or m.startswith("radassist.models")) == []
