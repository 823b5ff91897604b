"""Data at rest and at start: whatever the umask, what RadAssist writes is owner-only (0600 files,
0700 folders); a part started on a database without the current schema stops with one line; the
first start says what is still missing."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from radassist.auth.users import create_user
from radassist.config import AllowedCaller, Settings
from radassist.db.engine import make_sessionmaker
from radassist.startup import first_start_hints
from tests.conftest import free_port, wait_for_port, wait_until
from tests.dicom_factories import make_ct_study, write_study
from tests.peers import storescu

PARTS = ("listener", "worker", "web", "beat", "hl7-listener")


def _env(data: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    env.update({"RADASSIST_STORAGE_PATH": str(data), "RADASSIST_DATABASE_URL": database_url,
                "HF_HUB_OFFLINE": "1", **extra})
    return env


def _with_umask_0() -> None:
    os.umask(0)


def _radassist(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "radassist", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False, preexec_fn=_with_umask_0)


def _modes(root: Path) -> dict[str, int]:
    """Permission bits of ``root`` and everything under it, by path relative to ``root``."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _wider_than_owner(modes: dict[str, int], root: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes.items()
            if mode & 0o077 or mode != (0o700 if (root / name).is_dir() else 0o600)}


@pytest.fixture
def listener_process(tmp_path: Path) -> Iterator[Callable[[dict[str, str], Path], int]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], config: Path) -> int:
        port = free_port()
        config.write_text(textwrap.dedent(f"""\
            [dicom]
            host = "127.0.0.1"
            port = {port}
            [[dicom.allowed_callers]]
            ae_title = "MODALITY"
            network = "127.0.0.1/32"
            """))
        log = (tmp_path / "listener.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "radassist", "listener", "--config", str(config)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_with_umask_0)
        started.append(process)
        wait_for_port(port, timeout=60)
        return port

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_what_the_service_writes_is_owner_only_whatever_the_umask(
    database_url: str, tmp_path: Path, listener_process: Callable[[dict[str, str], Path], int]
) -> None:
    """With umask 0 (anything created would be world-writable): the database files where SQLite is
    used, the data folder, the instance store (folders and files), the keys, the outputs and the
    embedded broker are 0700 folders and 0600 files."""
    data = tmp_path / "data"
    env = _env(data, database_url)
    assert _radassist("db", "upgrade", env=env).returncode == 0
    port = listener_process(env, tmp_path / "radassist.toml")
    files = write_study(make_ct_study(series_count=2, instances_per_series=2), tmp_path / "study")
    assert storescu(port, *files).returncode == 0
    # What the workers and the web app write, from code paths that do not pass through the CLI.
    snippet = textwrap.dedent("""\
        import uuid
        from radassist.auth.secret import secret_key
        from radassist.config import load_settings
        from radassist.startup import prepare_embedded_broker
        from radassist.store.instances import InstanceStore
        from radassist.store.outputs import OutputStore
        settings = load_settings()
        OutputStore(settings.storage.outputs_dir).write(uuid.uuid4(), "sr.dcm", b"DICM")
        InstanceStore(settings.storage.path / "in-process").write(b"DICM", "1.2", "1.2.3", "1.2.3.4")
        secret_key(settings)
        prepare_embedded_broker(settings)
        """)
    done = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=_with_umask_0, check=False)
    assert done.returncode == 0, done.stderr

    modes = _modes(data)
    assert _wider_than_owner(modes, data) == {}
    names = {Path(name).name for name in modes}
    assert {"identity.key", "web-secret.key", "broker.sqlite3", "sr.dcm"} <= names
    assert sum(1 for name in modes if name.endswith(".dcm") and name.startswith("instances/")) == 4
    assert sum(1 for name in modes if name.endswith(".dcm") and name.startswith("in-process/")) == 1
    if database_url.startswith("sqlite"):
        database = Path(database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{database}{suffix}")
            assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600, suffix


def test_an_older_installation_is_narrowed_at_its_next_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "instances" / "ab").mkdir(parents=True)
    database = data / "radassist.sqlite3"
    for path, mode in ((data, 0o755), (data / "instances", 0o755), (data / "web-secret.key", 0o644),
                       (database, 0o644), (Path(f"{database}-wal"), 0o644)):
        if not path.exists():
            path.touch()
        path.chmod(mode)
    assert _radassist("db", "upgrade", env=_env(data, f"sqlite:///{database}")).returncode == 0
    for path in (data, data / "instances", data / "web-secret.key", database, Path(f"{database}-wal")):
        if path.exists():  # SQLite removes its WAL when the last connection closes
            assert stat.S_IMODE(path.stat().st_mode) in (0o600, 0o700), path
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_a_part_on_a_database_without_the_current_schema_stops_with_one_line(
    database_url: str, tmp_path: Path
) -> None:
    """Before: the listener started and answered every store "out of resources"."""
    env = _env(tmp_path / "data", database_url, RADASSIST_HL7_LISTEN_PORT=str(free_port()))
    for part in PARTS:
        result = _radassist(part, env=env, timeout=60)
        errors = [line for line in result.stderr.splitlines() if line.startswith("radassist:")]
        assert result.returncode == 2, (part, result.stderr[-2000:])
        assert len(errors) == 1 and "run `radassist db upgrade`" in errors[0] and "empty" in errors[0]
    # One migration behind is not current either.
    assert _radassist("db", "upgrade", env=env).returncode == 0
    from alembic import command

    from radassist.db.migrate import alembic_config

    command.downgrade(alembic_config(database_url), "0004")
    result = _radassist("listener", env=env, timeout=60)
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert result.returncode == 2 and f"at revision 0004, this release needs {head}" in result.stderr


def test_root_is_warned_about(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs as root to see the warning")
    result = _radassist("listener", env=_env(tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite3'}"), timeout=60)
    assert result.returncode == 2 and "running as root" in result.stderr


def test_the_first_start_says_how_to_allow_a_sender_and_create_an_admin(migrated_settings: Settings) -> None:
    hints = first_start_hints(migrated_settings, Path("/etc/radassist.toml"))
    assert len(hints) == 2
    assert "[[dicom.allowed_callers]]" in hints[0]
    assert "radassist user add NAME --role admin --config /etc/radassist.toml" in hints[1]

    from radassist.web.app import create_app

    with TestClient(create_app(migrated_settings)) as client:
        assert "No user exists yet" in client.get("/login").text
        factory = make_sessionmaker(migrated_settings)
        with factory.begin() as session:
            create_user(session, "alice", "correct horse battery staple", "admin")
        factory.kw["bind"].dispose()
        assert "No user exists yet" not in client.get("/login").text

    allowed = migrated_settings.model_copy(update={"dicom": migrated_settings.dicom.model_copy(
        update={"allowed_callers": (AllowedCaller(ae_title="PACS", network="10.0.0.5/32"),)})})
    assert first_start_hints(allowed, None) == []
    anyone = migrated_settings.model_copy(update={"dicom": migrated_settings.dicom.model_copy(
        update={"allow_any_caller": True})})
    (hint,) = first_start_hints(anyone, None)
    assert "allow_any_caller is on" in hint


def test_the_first_run_starts_its_workers_without_a_broker_race(tmp_path: Path) -> None:
    """``radassist run`` on a fresh data folder: both workers come up on the embedded broker, whose
    tables were made once before them ("table kombu_message already exists" before)."""
    import sqlalchemy as sa

    data = tmp_path / "data"
    dicom_port, web_port = free_port(), free_port()
    env = _env(data, f"sqlite:///{data / 'radassist.sqlite3'}", RADASSIST_DICOM_PORT=str(dicom_port),
               RADASSIST_WEB_PORT=str(web_port))
    env.pop("RADASSIST_DATABASE_URL")
    log = tmp_path / "run.log"
    process = subprocess.Popen([sys.executable, "-m", "radassist", "run"], env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    try:
        wait_for_port(web_port, timeout=90)
        broker = sa.create_engine(f"sqlite:///{data / 'broker.sqlite3'}")

        def both_workers_consume() -> bool:
            with broker.connect() as connection:
                names = set(connection.scalars(sa.text("SELECT name FROM kombu_queue")))
            return {"gpu", "io"} <= names

        wait_until(both_workers_consume, timeout=90)
        broker.dispose()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    output = log.read_text()
    assert process.returncode == 0, output[-4000:]
    assert "already exists" not in output and "Traceback" not in output
    assert "no DICOM sender is allowed yet" in output and "no web user exists yet" in output
