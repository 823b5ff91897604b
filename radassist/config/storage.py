"""``[storage]``, ``[database]`` and ``[queue]``: where data, rows and messages live."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from radassist.config.common import Section


class StorageSettings(Section):
    """Where received instances, produced SRs and HL7 messages are kept."""

    path: Path = Path("radassist-data")
    """The data folder. The embedded database and broker live here too unless their URLs are set."""
    min_free_bytes: int = Field(1_073_741_824, ge=0)
    """Below this much free disk space, new associations are refused (transient) and stores answered
    "out of resources" (0xA700). 0 disables the check."""
    min_free_percent: float = Field(0.0, ge=0, lt=100)
    """The same threshold as a share of the disk, in percent (both apply when both are set)."""
    sync: Literal["auto", "filesystem", "each-file"] = "auto"
    """How a received instance is made durable before its Success. ``each-file``: the file and its
    folder are fsynced, then the rows committed (three flushes in a row). ``filesystem``: file and
    rows are written, then one ``syncfs`` flushes them together for every instance committed at
    once (SQLite in a file only, Linux 5.8 or later; a start-up check listed instances against a
    power cut: docs/reliability-and-security.md); it also flushes whatever else is dirty on that
    file system, so on a volume other programs fill with unsynced writes ``each-file`` is faster.
    ``auto``: ``filesystem`` where it is possible, else ``each-file``."""
    in_commit_max_bytes: int = Field(16_384, ge=0)
    """With ``filesystem`` (or ``auto`` where it takes it): an instance of at most this many bytes is
    made durable inside its commit, its bytes written with its rows to the database's log, which one
    flush makes durable; it is answered at once and its file is flushed in the background within a
    tenth of a second. Were a power cut to take the file first, the next start rewrites it from
    those bytes. A larger instance waits for its group's flush. 0: every instance waits for it."""

    @property
    def instances_dir(self) -> Path:
        return self.path / "instances"

    @property
    def outputs_dir(self) -> Path:
        return self.path / "outputs"


class PreparedSettings(Section):
    """Where each job's prepared inputs (pictures, prompt inputs) wait for the model and are kept
    after its draft, for questions about it.  The drafting worker reads them from here and never
    the received files, so a GPU machine needs no shared disk unless ``files`` is chosen."""

    backend: Literal["files", "database", "s3"] = "files"
    """``files``: under the data folder (``prepared``; one machine, or a shared disk). ``database``:
    blobs in the database's ``prepared_blobs`` table (SQLite or PostgreSQL; no other service for
    several machines). ``s3``: an S3-compatible object store (``s3_*`` below)."""
    s3_endpoint_url: str = ""
    """The object store's URL (e.g. ``http://minio:9000``); empty: AWS S3 itself."""
    s3_bucket: str = ""
    """The bucket (it must exist); required with ``backend = "s3"``."""
    s3_prefix: str = "radassist/prepared/"
    """Key prefix under which each job's objects are kept (``<prefix><job id>/<name>``)."""
    s3_region: str = ""
    """The region; empty: boto3's default (environment, ``~/.aws/config``)."""
    s3_access_key_id: str = ""
    """Empty: boto3's own credential chain (environment, instance role)."""
    s3_secret_access_key: SecretStr = SecretStr("")
    """With ``s3_access_key_id``; give it as ``s3_secret_access_key_file`` to keep it out of the file."""

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> PreparedSettings:
        if self.backend == "s3" and not self.s3_bucket.strip():
            raise ValueError('backend "s3" needs s3_bucket')
        return self


class RetentionSettings(Section):
    """When the files of delivered studies are removed, so that the disk never fills."""

    keep_done_hours: float = Field(168.0, ge=0)
    """A study that is done (its draft delivered everywhere, or nothing to draft) keeps its received
    instances and produced outputs this long; then they are removed (its rows, draft and timeline stay).
    0: kept until the space is needed. A study not yet delivered is never removed."""
    pipeline_keep_done_hours: tuple[str, ...] = ()
    """``keep_done_hours`` of single pipelines, as "AE_TITLE=hours" (e.g. ["CT_AI=24"])."""
    make_room: bool = True
    """Remove the oldest done studies, whatever their age, while free disk space is below the
    low-disk threshold ([storage] min_free_bytes / min_free_percent) plus headroom_bytes, so intake is
    not refused for space that delivered studies hold."""
    headroom_bytes: int = Field(2_147_483_648, ge=0)
    """How far above the low-disk threshold retention starts making room."""
    interval_seconds: float = Field(60.0, gt=0)
    """How often the scheduler runs retention."""

    @field_validator("pipeline_keep_done_hours", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # From the environment: RADASSIST_RETENTION_PIPELINE_KEEP_DONE_HOURS="CT_AI=24,MG_AI=720".
        return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value

    @field_validator("pipeline_keep_done_hours")
    @classmethod
    def _check_pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            title, sep, hours = entry.partition("=")
            try:
                ok = bool(sep and title.strip()) and float(hours) >= 0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f'"{entry}" is not "AE_TITLE=hours"')
        return value

    def hours_for(self, ae_title: str) -> float:
        """``keep_done_hours`` of the pipeline with this AE title."""
        for entry in self.pipeline_keep_done_hours:
            title, _, hours = entry.partition("=")
            if title.strip() == ae_title:
                return float(hours)
        return self.keep_done_hours


class DatabaseSettings(Section):
    """The database of studies, jobs, drafts and deliveries (SQLAlchemy URL)."""

    url: str = ""
    """Empty: SQLite in the data folder. Production: ``postgresql+psycopg://user@host/db``."""


class QueueSettings(Section):
    """The Celery broker that carries jobs to the workers."""

    broker_url: str = ""
    """Empty: Celery's SQLAlchemy transport on SQLite in the data folder. Production: ``amqp://...`` or ``redis://...``."""
    sweep_interval_seconds: float = Field(2.0, gt=0)
    """How often the scheduler looks for complete studies and for deliveries due a retry."""
    job_time_limit_seconds: int = Field(1800, ge=10)
    """Hard time limit of one drafting job; the soft limit is 90 % of it."""
    worker_heartbeat_seconds: float = Field(10.0, gt=0, le=300)
    """How often each worker reports in (``worker_presence``): the system page lists the workers
    from it on every broker, and the sweep sees from it which worker has gone."""
    worker_lost_after_seconds: float = Field(90.0, gt=0)
    """A worker silent this long (its machine gone, its process killed and not started again under
    its name) has lost its jobs: the sweep hands back what it was preparing or drafting, instead of
    waiting for the time limit. At least three heartbeats; a worker only slow to report in loses
    nothing but the work on that job, since its late result loses its compare-and-set."""
    embedded_polling_seconds: float = Field(0.5, gt=0, le=5)
    """On the embedded broker, how long a worker waits before it looks again for a message (the
    broker is polled). With the wake-ups (below) a poll only covers a lost wake-up: 0.5 s costs an
    idle ``radassist run`` 3 % of a core against 14 % at 0.05 s, and drafts no slower
    (docs/performance.md). Without wake-ups, polling is the hand-over: set 0.05. kombu's own 1 s
    caps each worker at about one message a second."""
    embedded_wakeups: bool = True
    """On the embedded broker, a publisher wakes the idle workers of the queue it sent to (a named
    pipe per queue beside the broker file), so a hand-over between stages takes milliseconds
    instead of up to ``embedded_polling_seconds``. Off: kombu's transport as shipped (polling only)."""


    @model_validator(mode="after")
    def _heartbeats_before_lost(self) -> QueueSettings:
        if self.worker_lost_after_seconds < 3 * self.worker_heartbeat_seconds:
            raise ValueError("worker_lost_after_seconds must be at least three worker_heartbeat_seconds: "
                             "one late heartbeat must not hand back a live worker's jobs")
        return self
