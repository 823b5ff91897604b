"""What every part of the service checks and prepares before it serves, called by the CLI.

* Everything a part creates is owner-only: the process's umask becomes 0077 and the data folder,
  its stores, databases and secrets are created (or narrowed to) 0700 folders and 0600 files
  (:mod:`radassist.store.private`).
* Running as root is allowed but warned about: a part needs no privilege (bind a port below 1024
  with ``CAP_NET_BIND_SERVICE``, or let the PACS send to 11112).
* A part started against a database without the current schema stops with one line that says to
  run ``radassist db upgrade`` (exit status 2), instead of serving every request with an error.
* The embedded broker's tables are created once, under a file lock, before the workers start, so
  two workers starting together never race to create them.
* On the first start, the terminal says how to allow a sender and how to create the first admin.
* Instances committed before their files' flush (``[storage] sync``) and still listed are read back,
  and those a crash did not keep are undone, before any part works on them
  (:mod:`radassist.intake.unsynced`).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from radassist.config import Settings
from radassist.errors import ConfigError
from radassist.store.private import private_dirs, private_file, restrict

logger = logging.getLogger(__name__)

UMASK = 0o077
SCHEMA_CODE = "db.schema_not_current"
RUN_CHILD_ENV = "RADASSIST_RUN_CHILD"
"""Set by ``radassist run`` for the parts it starts: what it said once is not repeated by each."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (``sqlite:///...`` or ``sqla+sqlite:///...``); None for anything else."""
    url = url.removeprefix("sqla+")
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def secure_data_folder(settings: Settings) -> None:
    """Owner-only from here on: the umask, the data folder and what already lies in it."""
    os.umask(UMASK)
    storage = settings.storage
    for folder in (storage.path, storage.instances_dir, storage.outputs_dir):
        private_dirs(folder)
        restrict(folder)
    for name in ("web-secret.key", "identity.key"):
        restrict(storage.path / name)
    for beat_file in storage.path.glob("celerybeat-schedule*"):
        restrict(beat_file)
    for url in (settings.database_url, settings.broker_url):
        path = sqlite_path(url)
        if path is not None:
            for suffix in ("", "-wal", "-shm", "-journal", "-turn"):
                restrict(Path(f"{path}{suffix}"))


def warn_if_root() -> None:
    if os.geteuid() == 0 and not os.environ.get(RUN_CHILD_ENV):
        logger.warning(
            "running as root: RadAssist needs no privilege; run each part as an unprivileged system user "
            "that owns the data folder"
        )


def require_current_schema(settings: Settings) -> None:
    """Raise ``ConfigError`` (one line: run ``radassist db upgrade``) unless the database's schema
    is the one this release's migrations build.  A database that cannot be reached is left to the
    part's own retries: it may be starting too."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from radassist.db.engine import make_engine
    from radassist.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        logger.warning("could not read the database's schema version (%s); starting anyway",
                       type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__)
        return
    finally:
        engine.dispose()
    if current != head:
        found = f"at revision {current}" if current else "empty"
        raise ConfigError(
            f"the database schema is not current ({found}, this release needs {head}): "
            "run `radassist db upgrade` with the same --config first",
            code=SCHEMA_CODE,
        )


def prepare_embedded_broker(settings: Settings) -> None:
    """Create the embedded broker's file (0600) and tables once, before any worker uses them, and drop
    the messages it has delivered; nothing for RabbitMQ or Redis."""
    path = sqlite_path(settings.broker_url)
    if path is None:
        return
    private_file(path)
    lock = os.open(f"{path}-init", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        from kombu.connection import Connection

        with Connection(settings.broker_url) as connection:  # type: ignore[no-untyped-call]
            channel = connection.default_channel
            channel.session  # noqa: B018 - kombu's SQLAlchemy channel creates its tables when it opens
    finally:
        os.close(lock)
    from radassist.retention.broker import remove_delivered_messages

    remove_delivered_messages(settings.broker_url)


def first_start_hints(settings: Settings, config_path: Path | None) -> list[str]:
    """What a new installation still needs, each as a line to show in the terminal."""
    config = f" --config {config_path}" if config_path else ""
    hints: list[str] = []
    dicom = settings.dicom
    if dicom.allow_any_caller:
        hints.append(
            f"[dicom] allow_any_caller is on: any host that reaches port {dicom.port} may send studies; "
            "list the senders in [[dicom.allowed_callers]] and turn it off"
        )
    elif not dicom.allowed_callers:
        hints.append(
            "no DICOM sender is allowed yet, so every association is refused; allow one in the config file "
            '(e.g. [[dicom.allowed_callers]] ae_title = "PACS" network = "10.0.0.5/32") and restart'
        )
    if not _has_users(settings):
        hints.append(
            f"no web user exists yet: create the first admin with `radassist user add NAME --role admin{config}`, "
            f"then log in at http://{settings.web.host}:{settings.web.port}/"
        )
    return hints


def _has_users(settings: Settings) -> bool:
    from radassist.db.engine import make_engine
    from radassist.db.tables import User

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return bool(connection.scalar(select(func.count()).select_from(User)))
    except OperationalError:
        return True  # no answer: say nothing rather than something wrong
    finally:
        engine.dispose()


def check_unsynced_instances(settings: Settings, *, confirm: bool) -> None:
    """Read back the listed instances (:func:`radassist.intake.unsynced.check_unsynced`); a database
    that cannot be reached is left to the part's own retries, like the schema check."""
    from radassist.db.engine import make_sessionmaker
    from radassist.intake.unsynced import check_unsynced
    from radassist.store.instances import InstanceStore

    session_factory = make_sessionmaker(settings)
    try:
        check_unsynced(session_factory, InstanceStore(settings.storage.instances_dir), confirm=confirm)
    except OperationalError as exc:
        logger.warning("could not check the instances listed before their flush (%s); starting anyway",
                       type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__)
    finally:
        bind = session_factory.kw.get("bind")
        if bind is not None:
            bind.dispose()


def prepare(settings: Settings, *, check_schema: bool = True, check_unsynced: bool = True) -> None:
    """The start of every part: owner-only files, the root warning, the schema check, the read-back
    of instances a crash may have cut (only undoing what was lost: a listener may be flushing the rest)."""
    secure_data_folder(settings)
    warn_if_root()
    if check_schema:
        require_current_schema(settings)
        if check_unsynced:
            check_unsynced_instances(settings, confirm=False)
