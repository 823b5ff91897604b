"""Settings: loaded once by an entry point, fully typed, frozen, passed down explicitly.

Order of precedence: built-in defaults < the TOML file < ``RADASSIST_<SECTION>_<KEY>`` environment
variables.  List sections (``[[destinations]]``) are overridden as a whole with a JSON value, e.g.
``RADASSIST_DESTINATIONS='[{"name": "pacs", "ae_title": "PACS", "host": "10.0.0.5", "port": 104}]'``.

There is no module-level instance and no reload: a changed file takes effect at the next start.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from radassist.errors import ConfigError

ENV_PREFIX = "RADASSIST_"


def validate_ae_title(value: str) -> str:
    """Apply PS3.5's AE rule: 1-16 characters of the default repertoire, no backslash or control."""
    stripped = value.strip()
    if not stripped or len(value) > 16:
        raise ValueError("an AE title has 1 to 16 characters")
    if any(ord(c) < 0x20 or ord(c) > 0x7E or c == "\\" for c in value):
        raise ValueError("an AE title may hold printable ASCII only, without backslash")
    return stripped


AETitle = Annotated[str, Field(min_length=1, max_length=16)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class DicomSettings(_Section):
    """The DICOM listener (C-STORE and C-ECHO SCP)."""

    ae_title: AETitle = "RADASSIST"
    """Our AE title; the PACS routes studies to it. Associations calling another title are refused."""
    host: str = "0.0.0.0"
    """Address the listener binds to."""
    port: int = Field(11112, ge=1, le=65535)
    """TCP port of the listener."""
    study_quiet_seconds: float = Field(10.0, gt=0)
    """A study is complete when no instance of it has arrived for this many seconds."""
    max_associations: int = Field(16, ge=1)
    """Most simultaneous associations; more are refused (A-ASSOCIATE-RJ, transient)."""
    network_timeout_seconds: float = Field(60.0, gt=0)
    """An association idle for this long is aborted."""

    _check_ae = field_validator("ae_title")(validate_ae_title)


class StorageSettings(_Section):
    """Where received instances, produced SRs and HL7 messages are kept."""

    path: Path = Path("radassist-data")
    """The data folder. The embedded database and broker live here too unless their URLs are set."""

    @property
    def instances_dir(self) -> Path:
        return self.path / "instances"

    @property
    def outputs_dir(self) -> Path:
        return self.path / "outputs"


class DatabaseSettings(_Section):
    """The database of studies, jobs, drafts and deliveries (SQLAlchemy URL)."""

    url: str = ""
    """Empty: SQLite in the data folder. Production: ``postgresql+psycopg://user@host/db``."""


class QueueSettings(_Section):
    """The Celery broker that carries jobs to the workers."""

    broker_url: str = ""
    """Empty: Celery's SQLAlchemy transport on SQLite in the data folder. Production: ``amqp://...`` or ``redis://...``."""
    sweep_interval_seconds: float = Field(2.0, gt=0)
    """How often the scheduler looks for complete studies and for deliveries due a retry."""
    job_time_limit_seconds: int = Field(1800, ge=10)
    """Hard time limit of one drafting job; the soft limit is 90 % of it."""


class ModelSettings(_Section):
    """The vision-language model that drafts reports."""

    name: str = "google/medgemma-1.5-4b-it"
    """A Hugging Face hub id (its weights cached or downloadable with your token) or a local folder."""
    revision: str = ""
    """The hub revision (commit or tag) to pin; empty means the default branch."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """``auto``: bfloat16 on a GPU, float32 on CPU."""
    max_new_tokens: int = Field(512, ge=1, le=8192)
    """Upper bound on the length of one draft, in tokens."""
    image_size: int = Field(896, ge=32, le=4096)
    """Longest side, in pixels, of each image handed to the model's processor."""
    max_images: int = Field(8, ge=1, le=64)
    """Most images of one study shown to the model."""
    local_files_only: bool = False
    """Never contact the hub; load from the local cache or folder only."""


class DicomDestination(_Section):
    """A PACS (or any Storage SCP) that receives our SRs by C-STORE."""

    kind: Literal["dicom"] = "dicom"
    """How SRs reach it: ``dicom`` (C-STORE)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown on the worklist."""
    ae_title: AETitle
    """The destination's AE title (the called AE)."""
    host: str
    """Host name or address of the destination."""
    port: int = Field(ge=1, le=65535)
    """Its DICOM port."""
    calling_ae_title: AETitle | None = None
    """The calling AE we present; defaults to ``[dicom] ae_title``."""

    _check_ae = field_validator("ae_title")(validate_ae_title)


Destination = Annotated[DicomDestination, Field(discriminator="kind")]


class Hl7Settings(_Section):
    """The RIS that receives the draft as an HL7 v2 ORU^R01 over MLLP."""

    host: str = ""
    """Host of the RIS's MLLP listener; empty disables HL7 output."""
    port: int = Field(2575, ge=1, le=65535)
    """Its MLLP port."""
    sending_application: str = "RADASSIST"
    """MSH-3."""
    sending_facility: str = "RADASSIST"
    """MSH-4."""
    receiving_application: str = "RIS"
    """MSH-5."""
    receiving_facility: str = "HOSPITAL"
    """MSH-6."""
    result_status: Literal["R", "P", "I", "S", "A"] = "R"
    """OBR-25: ``R`` = results stored, not yet verified (the default); ``P`` = preliminary."""
    ack_timeout_seconds: float = Field(30.0, gt=0)
    """How long to wait for the RIS's ACK before the attempt counts as failed and is retried."""

    @property
    def enabled(self) -> bool:
        return bool(self.host)


class DeliverySettings(_Section):
    """How failed deliveries (SR to a PACS, ORU to the RIS) are retried."""

    retry_initial_seconds: float = Field(5.0, gt=0)
    """Wait before the first retry; it doubles after each failure."""
    retry_max_seconds: float = Field(600.0, gt=0)
    """The wait between retries never exceeds this."""
    max_age_seconds: float = Field(86400.0, gt=0)
    """A delivery still failing this long after its first attempt is failed for good."""


class WebSettings(_Section):
    """The worklist web page and JSON API."""

    host: str = "127.0.0.1"
    """Address the web app binds to."""
    port: int = Field(8080, ge=1, le=65535)
    """Its TCP port."""


class LoggingSettings(_Section):
    """Log output. Patient names, IDs and birth dates never appear, whatever the level."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The level of RadAssist's own loggers."""


class Settings(_Section):
    """All of RadAssist's settings; one instance per process, built by :func:`load_settings`."""

    dicom: DicomSettings = DicomSettings()
    storage: StorageSettings = StorageSettings()
    database: DatabaseSettings = DatabaseSettings()
    queue: QueueSettings = QueueSettings()
    model: ModelSettings = ModelSettings()
    destinations: tuple[Destination, ...] = ()
    hl7: Hl7Settings = Hl7Settings()
    delivery: DeliverySettings = DeliverySettings()
    web: WebSettings = WebSettings()
    logging: LoggingSettings = LoggingSettings()

    @field_validator("destinations", mode="before")
    @classmethod
    def _default_destination_kind(cls, value: Any) -> Any:
        # A destination without ``kind`` is a DICOM C-STORE destination, the common case.
        if isinstance(value, (list, tuple)):
            return [
                {"kind": "dicom", **item} if isinstance(item, Mapping) and "kind" not in item else item
                for item in value
            ]
        return value

    @model_validator(mode="after")
    def _unique_destination_names(self) -> Settings:
        names = [d.name for d in self.destinations]
        if len(names) != len(set(names)):
            raise ValueError("destination names must be unique")
        return self

    @property
    def database_url(self) -> str:
        """The effective database URL: the configured one, or SQLite in the data folder."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.storage.path / 'radassist.sqlite3').resolve()}"

    @property
    def broker_url(self) -> str:
        """The effective broker URL: the configured one, or Celery's SQLAlchemy transport on SQLite."""
        if self.queue.broker_url:
            return self.queue.broker_url
        return f"sqla+sqlite:///{(self.storage.path / 'broker.sqlite3').resolve()}"

    def destination(self, name: str) -> Destination:
        for dest in self.destinations:
            if dest.name == name:
                return dest
        raise KeyError(name)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``RADASSIST_<SECTION>_<KEY>`` variables into a nested mapping."""
    overrides: dict[str, Any] = {}
    sections = {name: field for name, field in Settings.model_fields.items()}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        if rest == "destinations":
            try:
                overrides["destinations"] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{var} must be a JSON list: {exc.msg}") from None
            continue
        section, _, key = rest.partition("_")
        if section not in sections or not key or section == "destinations":
            continue
        overrides.setdefault(section, {})[key] = raw
    return overrides


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_settings(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the process's settings from an optional TOML file and the environment.

    ``RADASSIST_CONFIG`` names the file when ``path`` is not given.  Errors name the setting
    and never echo secrets.
    """
    environ = os.environ if environ is None else environ
    if path is None and environ.get("RADASSIST_CONFIG"):
        path = environ["RADASSIST_CONFIG"]
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    env = {k: v for k, v in _env_overrides(environ).items() if k != "config"}
    data = _merge(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
