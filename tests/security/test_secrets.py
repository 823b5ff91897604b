"""Secrets come from the environment or from files, and are never printed: not by ``radassist config
check``, not in start-up lines, not in the errors of an unreachable database whose URL holds the
password (in the user-info part, or as ``?password=``, which libpq also accepts)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from radassist.config import Settings, load_settings, mask_url
from radassist.errors import ConfigError
from tests.conftest import free_port, wait_until

DB_PASSWORD = "s3cr3tpwDB"
BROKER_PASSWORD = "s3cr3tpwMQ"
WEB_KEY = "s3cr3tWEBKEY-" + "k" * 40
MODEL_KEY = "s3cr3tMODELKEY"
ORTHANC_PASSWORD = "s3cr3tORTHANC"
DICOMWEB_TOKEN = "s3cr3tBEARER"
SECRETS = (DB_PASSWORD, BROKER_PASSWORD, WEB_KEY, MODEL_KEY, ORTHANC_PASSWORD, DICOMWEB_TOKEN)


def _closed_port() -> int:
    return free_port()  # nothing listens there


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    env.update({"RADASSIST_STORAGE_PATH": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1", **extra})
    return env


def _radassist(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "radassist", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def _hits(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


# --- secrets from files -----------------------------------------------------------------------


def test_any_setting_can_be_read_from_a_file(tmp_path: Path) -> None:
    url_file = tmp_path / "db-url"
    url_file.write_text(f"postgresql+psycopg://radassist:{DB_PASSWORD}@db.example/radassist\n")
    key_file = tmp_path / "web-key"
    key_file.write_text(WEB_KEY + "\r\n")
    orthanc_file = tmp_path / "orthanc-pw"
    orthanc_file.write_text(ORTHANC_PASSWORD)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[web]\nsecret_key_file = "{key_file}"\n[dicom]\ntls_port = 2762\ntls_cert_file = "/etc/ssl/server.pem"\n'
        f'[[destinations]]\nkind = "orthanc"\nname = "o"\nurl = "http://orthanc:8042"\nusername = "ra"\n'
        f'password_file = "{orthanc_file}"\n'
    )
    settings = load_settings(config, environ={"RADASSIST_DATABASE_URL_FILE": str(url_file)})
    assert settings.database.url == f"postgresql+psycopg://radassist:{DB_PASSWORD}@db.example/radassist"
    assert settings.web.secret_key.get_secret_value() == WEB_KEY  # one trailing newline (CRLF too) stripped
    assert settings.destinations[0].password.get_secret_value() == ORTHANC_PASSWORD  # type: ignore[union-attr]
    assert settings.dicom.tls_cert_file == "/etc/ssl/server.pem"  # a setting named *_file stays a path

    # The environment's *_FILE overrides the file's plain value, as RADASSIST_DATABASE_URL would.
    config.write_text('[database]\nurl = "sqlite:///from-the-file.sqlite3"\n')
    assert load_settings(config, environ={"RADASSIST_DATABASE_URL_FILE": str(url_file)}).database.url.endswith(
        "db.example/radassist")


def test_secret_file_errors_name_the_setting_not_the_content(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_settings(environ={"RADASSIST_DATABASE_URL_FILE": str(tmp_path / "absent")})
    assert "database.url_file" in missing.value.message and "absent" in missing.value.message
    url_file = tmp_path / "db-url"
    url_file.write_text(f"postgresql://u:{DB_PASSWORD}@h/db")
    with pytest.raises(ConfigError) as both:
        load_settings(environ={"RADASSIST_DATABASE_URL_FILE": str(url_file), "RADASSIST_DATABASE_URL": "sqlite://"})
    assert "either url or url_file" in both.value.message
    bad = tmp_path / "bad-port"
    bad.write_text(DB_PASSWORD)
    with pytest.raises(ConfigError) as invalid:
        load_settings(environ={"RADASSIST_WEB_PORT_FILE": str(bad)})
    assert "web.port" in invalid.value.message and DB_PASSWORD not in invalid.value.message


@pytest.mark.parametrize("url, shown", [
    (f"postgresql+psycopg://ra:{DB_PASSWORD}@db:5432/ra", "postgresql+psycopg://ra:***@db:5432/ra"),
    (f"postgresql+psycopg://ra@db/ra?sslmode=require&password={DB_PASSWORD}",
     "postgresql+psycopg://ra@db/ra?sslmode=require&password=***"),
    (f"amqp://guest:{BROKER_PASSWORD}@mq:5672//", "amqp://guest:***@mq:5672//"),
    (f"redis://:{BROKER_PASSWORD}@cache:6379/0", "redis://:***@cache:6379/0"),
    ("sqlite:////var/lib/radassist/radassist.sqlite3", "sqlite:////var/lib/radassist/radassist.sqlite3"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


# --- never printed ----------------------------------------------------------------------------


def test_config_check_masks_every_secret(tmp_path: Path) -> None:
    key_file = tmp_path / "web-key"
    key_file.write_text(WEB_KEY)
    destinations = [
        {"kind": "orthanc", "name": "o", "url": f"http://ra:{ORTHANC_PASSWORD}@orthanc:8042", "username": "ra",
         "password": ORTHANC_PASSWORD},
        {"kind": "dicomweb", "name": "w", "url": "https://pacs/dicom-web", "bearer_token": DICOMWEB_TOKEN},
    ]
    for database_url in (f"postgresql+psycopg://ra:{DB_PASSWORD}@db/ra", f"postgresql+psycopg://ra@db/ra?password={DB_PASSWORD}"):
        env = _env(tmp_path, RADASSIST_DATABASE_URL=database_url,
                   RADASSIST_QUEUE_BROKER_URL=f"amqp://guest:{BROKER_PASSWORD}@mq//",
                   RADASSIST_WEB_SECRET_KEY_FILE=str(key_file), RADASSIST_MODEL_API_KEY=MODEL_KEY,
                   RADASSIST_MODEL_URL=f"http://vllm:{MODEL_KEY}@gpu:8000/v1",
                   RADASSIST_DESTINATIONS=json.dumps(destinations))
        result = _radassist("config", "check", env=env)
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        assert _hits(result.stdout + result.stderr) == []
        assert shown["database"]["url"].startswith("postgresql+psycopg://ra")  # still useful to read
        assert shown["web"]["secret_key"] == "**********"


def test_unreachable_database_errors_hold_no_password(tmp_path: Path) -> None:
    port = _closed_port()
    for url in (f"postgresql+psycopg://radassist:{DB_PASSWORD}@127.0.0.1:{port}/radassist",
                f"postgresql+psycopg://radassist@127.0.0.1:{port}/radassist?password={DB_PASSWORD}"):
        env = _env(tmp_path, RADASSIST_DATABASE_URL=url, RADASSIST_WEB_SECRET_KEY=WEB_KEY)
        upgrade = _radassist("db", "upgrade", env=env)
        assert upgrade.returncode != 0 and "OperationalError" in upgrade.stderr
        run = _radassist("run", env=env)  # migrates first, so it stops at once
        assert run.returncode != 0
        user = _radassist("user", "token", "admin", env=env)
        assert user.returncode != 0
        assert _hits(upgrade.stdout + upgrade.stderr + run.stdout + run.stderr + user.stdout + user.stderr) == []


def test_worker_start_up_lines_hold_no_broker_password(tmp_path: Path) -> None:
    """Celery's banner and its reconnect errors name the broker: with the password masked."""
    env = _env(tmp_path, RADASSIST_QUEUE_BROKER_URL=f"amqp://guest:{BROKER_PASSWORD}@127.0.0.1:{_closed_port()}//",
               RADASSIST_DATABASE_URL=f"sqlite:///{tmp_path / 'w.sqlite3'}")
    assert _radassist("db", "upgrade", env=env).returncode == 0  # a worker starts only on a current schema
    process = subprocess.Popen([sys.executable, "-m", "radassist", "worker", "--queues", "io", "--pool", "threads",
                                "--concurrency", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append(raw.decode("utf-8", "replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:  # until it has tried the broker and said where (a loaded machine starts Celery slowly)
        wait_until(lambda: any("Cannot connect to" in line for line in lines), timeout=90, interval=0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        reader.join(timeout=10)
    text = "".join(lines)
    assert "Cannot connect to amqp://guest:**@" in text  # it did try, and said where
    assert _hits(text) == []


def test_web_app_with_the_database_down(make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture) -> None:
    """Readiness, metrics and a login while the database is unreachable: no password in any answer or log."""
    from radassist.web.app import create_app

    caplog.set_level(logging.DEBUG)
    settings = make_settings(
        database_url=f"postgresql+psycopg://radassist:{DB_PASSWORD}@127.0.0.1:{_closed_port()}/radassist",
        web_secret_key=WEB_KEY, web_metrics_public="true",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == "database.unreachable"
        metrics = client.get("/metrics")
        assert "radassist_db_up 0.0" in metrics.text
        page = client.get("/login")
        client.cookies.set("radassist_login", "x")
        login = client.post("/login", data={"username": "a", "password": "b" * 10, "login_csrf": "x"})
        api = client.get("/api/studies", headers={"Authorization": "Bearer ra_x"})
        texts = [ready.text, metrics.text, page.text, login.text, api.text, caplog.text]
    assert login.status_code >= 500 and api.status_code >= 500
    assert _hits("\n".join(texts)) == []
