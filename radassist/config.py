"""Settings: loaded once by an entry point, fully typed, frozen, passed down explicitly.

Order of precedence: built-in defaults < the TOML file < ``RADASSIST_<SECTION>_<KEY>`` environment
variables.  List sections (``[[destinations]]``) are overridden as a whole with a JSON value, e.g.
``RADASSIST_DESTINATIONS='[{"name": "pacs", "ae_title": "PACS", "host": "10.0.0.5", "port": 104}]'``.

Secrets need not be written into the file or the environment: any setting ``<key>`` can instead be
given as ``<key>_file``, the path of a file holding the value (Docker and Kubernetes secrets), in the
TOML (``[database] url_file = "/run/secrets/db-url"``) or the environment
(``RADASSIST_DATABASE_URL_FILE=/run/secrets/db-url``).  One trailing newline is stripped.

There is no module-level instance and no reload: a changed file takes effect at the next start.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from radassist.errors import ConfigError

ENV_PREFIX = "RADASSIST_"
FILE_SUFFIX = "_file"
"""``<key>_file`` names a file holding the value of ``<key>`` (see the module docstring)."""


def validate_ae_title(value: str) -> str:
    """Apply PS3.5's AE rule: 1-16 characters of the default repertoire, no backslash or control."""
    stripped = value.strip()
    if not stripped or len(value) > 16:
        raise ValueError("an AE title has 1 to 16 characters")
    if any(ord(c) < 0x20 or ord(c) > 0x7E or c == "\\" for c in value):
        raise ValueError("an AE title may hold printable ASCII only, without backslash")
    return stripped


AETitle = Annotated[str, Field(min_length=1, max_length=16)]
SrClassName = Literal["enhanced", "comprehensive", "basic"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class AllowedCaller(_Section):
    """One sender allowed to associate: its calling AE title, where it connects from, and to which of our titles."""

    ae_title: str = Field(min_length=1, max_length=16)
    """The sender's calling AE title; ``*`` for any title (then ``network`` alone decides)."""
    network: str = "0.0.0.0/0"
    """The host address or network (CIDR) it connects from, e.g. ``10.1.2.0/24``; IPv4 or IPv6."""
    called_ae_titles: tuple[str, ...] = ()
    """Which of our AE titles it may call; empty: every one."""

    @field_validator("ae_title")
    @classmethod
    def _check_calling(cls, value: str) -> str:
        return value if value == "*" else validate_ae_title(value)

    @field_validator("network")
    @classmethod
    def _check_network(cls, value: str) -> str:
        import ipaddress

        return str(ipaddress.ip_network(value.strip(), strict=False))

    @field_validator("called_ae_titles")
    @classmethod
    def _check_called(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(validate_ae_title(v) for v in value)


class RequiredSeries(_Section):
    """A series a study must hold before it counts as complete (both parts must match when given)."""

    modality: str = ""
    """The series' Modality, e.g. ``CT``; empty: any."""
    description_pattern: str = ""
    """A regular expression searched (case-insensitive) in the Series Description; empty: any."""

    @field_validator("description_pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        import re

        re.compile(value)
        return value


class PipelineSettings(_Section):
    """What happens to studies sent to one of our AE titles (``[[pipelines]]``, keyed by ``ae_title``).

    Unset fields take the value of ``[dicom]``, ``[model]``, ``[hl7]`` and ``[[destinations]]``.
    """

    ae_title: AETitle
    """The called AE title that selects this pipeline; the listener answers to it on every port."""
    model_name: str = ""
    """The model that drafts these studies; empty: ``[model] name``."""
    destinations: tuple[str, ...] | None = None
    """Names of the ``[[destinations]]`` that receive the SR; unset: all of them."""
    hl7: bool = True
    """Send the ORU^R01 to the RIS (when ``[hl7]`` is configured)."""
    study_quiet_seconds: float | None = Field(None, gt=0)
    """Quiet time before a study is complete; unset: ``[dicom] study_quiet_seconds``."""
    series_quiet_seconds: float | None = Field(None, ge=0)
    """See ``[dicom] series_quiet_seconds``; unset: that value."""
    force_complete_after_seconds: float | None = Field(None, ge=0)
    """See ``[dicom] force_complete_after_seconds``; unset: that value."""
    required_series: tuple[RequiredSeries, ...] | None = None
    """See ``[dicom] required_series``; unset: those rules."""
    draft_non_image: bool | None = None
    """See ``[dicom] draft_non_image``; unset: that value."""
    priority: int = 0
    """Higher first: complete studies of higher-priority pipelines are claimed and queued first."""

    _check_ae = field_validator("ae_title")(validate_ae_title)


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
    """Most simultaneous associations per listener process; more are refused (A-ASSOCIATE-RJ, transient)."""
    network_timeout_seconds: float = Field(60.0, gt=0)
    """An association idle for this long is aborted."""
    series_quiet_seconds: float = Field(0.0, ge=0)
    """With ``required_series`` rules all met, a study completes after this much quiet instead of
    ``study_quiet_seconds`` (0: off). Per pipeline in ``[[pipelines]]``."""
    force_complete_after_seconds: float = Field(0.0, ge=0)
    """A study still receiving (or missing a required series) this long after its first instance is
    completed anyway (0: never)."""
    required_series: tuple[RequiredSeries, ...] = ()
    """Series a study must hold before the quiet timer completes it (each rule must match one series)."""
    draft_non_image: bool = False
    """Draft studies holding only non-image objects (SR, PR, KO, PDF...). Off: they are stored, never drafted."""
    allow_any_caller: bool = False
    """Accept associations from any calling AE and host. Off (the default): only ``allowed_callers``."""
    allowed_callers: tuple[AllowedCaller, ...] = ()
    """Who may send: ``[[dicom.allowed_callers]]`` entries of calling AE title, network and called AE titles."""
    tls_port: int = Field(0, ge=0, le=65535)
    """A second listener port speaking DICOM TLS (PS3.15 secure transport); 0 disables it."""
    tls_cert_file: str = ""
    """PEM server certificate (chain) of the TLS port."""
    tls_key_file: str = ""
    """PEM private key of ``tls_cert_file``; empty: the key is in the certificate file."""
    tls_ca_file: str = ""
    """PEM CA(s) that sign client certificates; required when ``tls_require_client_cert`` is on."""
    tls_require_client_cert: bool = False
    """Refuse TLS connections without a client certificate signed by ``tls_ca_file``."""
    listener_processes: int = Field(1, ge=1, le=64)
    """Listener processes serving the port(s): parallel associations then use several cores; the
    process serving fewest associations takes each new one. 1: one process. Up to one per core, on
    PostgreSQL and on SQLite alike (SQLite writers take turns on a lock file, ``<database>-turn``)."""

    _check_ae = field_validator("ae_title")(validate_ae_title)

    @model_validator(mode="after")
    def _tls_complete(self) -> DicomSettings:
        if self.tls_port and not self.tls_cert_file:
            raise ValueError("tls_port needs tls_cert_file")
        if self.tls_require_client_cert and not self.tls_ca_file:
            raise ValueError("tls_require_client_cert needs tls_ca_file")
        if self.tls_port and self.tls_port == self.port:
            raise ValueError("tls_port must differ from port")
        return self


class StorageSettings(_Section):
    """Where received instances, produced SRs and HL7 messages are kept."""

    path: Path = Path("radassist-data")
    """The data folder. The embedded database and broker live here too unless their URLs are set."""
    min_free_bytes: int = Field(1_073_741_824, ge=0)
    """Below this much free disk space, new associations are refused (transient) and stores answered
    "out of resources" (0xA700). 0 disables the check."""
    min_free_percent: float = Field(0.0, ge=0, lt=100)
    """The same threshold as a share of the disk, in percent (both apply when both are set)."""

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


class PromptProfileSettings(_Section):
    """A prompt profile: which studies it serves, what the model is told, how CT is windowed."""

    name: str = Field(min_length=1, max_length=64)
    """Recorded with each draft that used it."""
    modalities: tuple[str, ...] = ()
    """DICOM Modality values it serves (``CT``, ``MR``, ``CR``...); empty: any."""
    body_parts: tuple[str, ...] = ()
    """Words matched against BodyPartExamined and the study description (``CHEST``, ``HEAD``); empty: any."""
    instruction: str = Field("", max_length=4000)
    """What the model is asked to do beyond the common report format (e.g. what to comment on)."""
    windows: tuple[str, ...] = ()
    """CT windows shown: ``lung``, ``soft_tissue``, ``bone``, ``brain``, ``subdural``, ``liver``; empty: the header's."""
    window_mode: Literal["channels", "images"] = "channels"
    """``channels``: up to three windows packed as R, G, B of one image; ``images``: one image per window."""
    max_slices: int | None = Field(None, ge=1, le=256)
    """Slices shown for this kind of study; empty: ``[model] max_slices``."""


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
    backend: Literal["transformers", "openai", "adapter"] = "transformers"
    """``transformers``: the model runs in the worker process. ``openai``: an OpenAI-compatible
    server (vLLM, SGLang, TGI) at ``url`` serves it; ``name`` is then the served model name.
    ``adapter``: a site's own backend class named by ``adapter`` (e.g. a remote-code model)."""
    adapter: str = ""
    """``package.module:Class`` of a site backend (backend ``adapter``); built as ``Class(model_settings)``."""
    url: str = ""
    """Base URL of the OpenAI-compatible server, e.g. ``http://gpu-host:8000/v1`` (backend ``openai``)."""
    api_key: SecretStr = SecretStr("")
    """Bearer token for the server (backend ``openai``); empty sends none."""
    concurrency: int = Field(4, ge=1, le=256)
    """Most requests one worker process has in flight at once to the server (backend ``openai``)."""
    request_timeout_s: float = Field(300.0, gt=0)
    """Timeout of one request to the server (backend ``openai``)."""
    batch_size: int = Field(4, ge=1, le=64)
    """Most queued studies drafted together in one ``generate`` (backend ``transformers``)."""
    generation_time_limit_s: float = Field(600.0, gt=0)
    """Wall-clock limit of one ``generate`` call; a draft cut off by it fails as ``model.timeout``."""
    max_slices: int = Field(8, ge=1, le=256)
    """Slices of a CT/MR volume shown to the model (before multiplying by CT windows in ``images`` mode)."""
    profiles: tuple[PromptProfileSettings, ...] = ()
    """Site prompt profiles (``[[model.profiles]]``), tried before the built-in ones."""


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
    sr_class: SrClassName = "enhanced"
    """SR SOP class sent here: ``enhanced`` (default), ``comprehensive``, or ``basic`` (Basic Text SR, old PACS)."""
    tls: bool = False
    """Associate over TLS (DICOM TLS, PS3.15 B.1); the peer's certificate is checked against ``tls_ca_file``."""
    tls_ca_file: str = ""
    """PEM file of the CA(s) that sign the PACS's certificate; empty: the system's trust store."""
    tls_cert_file: str = ""
    """PEM client certificate we present, when the PACS requires one; empty: none."""
    tls_key_file: str = ""
    """PEM private key of ``tls_cert_file``; empty: the key is in the certificate file."""
    tls_check_hostname: bool = True
    """Check that the PACS's certificate names ``host``."""

    _check_ae = field_validator("ae_title")(validate_ae_title)


class OrthancDestination(_Section):
    """An Orthanc server that receives our SRs through its REST API (``POST /instances``)."""

    kind: Literal["orthanc"]
    """How SRs reach it: ``orthanc`` (Orthanc REST, through Orthanc's ``orthanc-api-client``)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown on the worklist."""
    url: str = Field(min_length=1)
    """Orthanc's base URL, e.g. ``http://orthanc:8042``."""
    username: str = ""
    """HTTP basic-auth user; empty: no authentication."""
    password: SecretStr = SecretStr("")
    """HTTP basic-auth password."""
    timeout_seconds: float = Field(30.0, gt=0)
    """Timeout of one HTTP request."""
    sr_class: SrClassName = "enhanced"
    """SR SOP class sent here: ``enhanced`` (default), ``comprehensive`` or ``basic``."""


class DicomwebDestination(_Section):
    """A DICOMweb server that receives our SRs by STOW-RS (``POST {url}/studies``)."""

    kind: Literal["dicomweb"]
    """How SRs reach it: ``dicomweb`` (STOW-RS, multipart/related; type=application/dicom)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown on the worklist."""
    url: str = Field(min_length=1)
    """The DICOMweb service root, e.g. ``https://pacs.example.org/dicom-web``."""
    username: str = ""
    """HTTP basic-auth user; empty: no basic authentication."""
    password: SecretStr = SecretStr("")
    """HTTP basic-auth password."""
    bearer_token: SecretStr = SecretStr("")
    """An OAuth bearer token sent as ``Authorization: Bearer``; empty: none."""
    tls_ca_file: str = ""
    """PEM file of the CA(s) that sign the server's certificate; empty: the system's trust store."""
    timeout_seconds: float = Field(30.0, gt=0)
    """Timeout of one HTTP request."""
    sr_class: SrClassName = "enhanced"
    """SR SOP class sent here: ``enhanced`` (default), ``comprehensive`` or ``basic``."""


Destination = Annotated[DicomDestination | OrthancDestination | DicomwebDestination, Field(discriminator="kind")]


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
    version: Literal["2.5.1", "2.3.1"] = "2.5.1"
    """HL7 version of the ORU^R01 (MSH-12): ``2.5.1``, or ``2.3.1`` for older RIS."""
    accession_field: Literal["OBR-3", "OBR-18"] = "OBR-3"
    """Where the RIS keeps the accession number, in our ORU and in its orders: ``OBR-3`` (filler
    order number) or ``OBR-18`` (placer field 1). Order numbers come from the stored order when known."""
    obx_value_type: Literal["TX", "FT"] = "TX"
    """OBX-2 of the report lines (one OBX per line): ``TX`` text or ``FT`` formatted text."""
    tls: bool = False
    """Send over TLS (MLLP/S); the RIS's certificate is checked against ``tls_ca_file`` (or the system CAs)."""
    tls_ca_file: str = ""
    """PEM file of the CA(s) that sign the RIS's certificate; empty: the system's trust store."""
    tls_cert_file: str = ""
    """PEM client certificate (chain) we present, when the RIS requires one; empty: none."""
    tls_key_file: str = ""
    """PEM private key of ``tls_cert_file``; empty: the key is in the certificate file."""
    tls_check_hostname: bool = True
    """Check that the RIS's certificate names ``host``."""
    listen_host: str = "0.0.0.0"
    """Address of our inbound MLLP listener (orders and signed reports from the RIS)."""
    listen_port: int = Field(0, ge=0, le=65535)
    """Port of the inbound MLLP listener; 0 disables it (``radassist run`` starts it when set)."""
    listen_tls_cert_file: str = ""
    """PEM certificate (chain) of the inbound listener; set it to accept MLLP over TLS only."""
    listen_tls_key_file: str = ""
    """PEM private key of ``listen_tls_cert_file``; empty: the key is in the certificate file."""

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
    secret_key: SecretStr = SecretStr("")
    """Key that signs CSRF tokens (32+ characters). Empty: one is generated into the data folder
    (``web-secret.key``) on first start and kept. Placeholders such as ``change-me`` are refused."""
    secure_cookies: bool = False
    """Mark the session cookie ``Secure`` (sent over HTTPS only). Turn on when served behind TLS."""
    session_hours: float = Field(12.0, gt=0)
    """A login lasts this long."""
    metrics_public: bool = False
    """Serve ``/metrics`` without login. Off: Prometheus sends an API token (``authorization`` in its scrape config)."""
    login_attempts: int = Field(5, ge=1)
    """Failed logins allowed per user name and client address within ``login_window_s``; more are refused (429)."""
    login_window_s: float = Field(300.0, gt=0)
    """The window of ``login_attempts``."""


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
    pipelines: tuple[PipelineSettings, ...] = ()
    """Extra AE titles, each with its own pipeline; ``[dicom] ae_title`` is the default pipeline."""
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

    @model_validator(mode="after")
    def _consistent_pipelines(self) -> Settings:
        titles = [self.dicom.ae_title, *(p.ae_title for p in self.pipelines)]
        if len(titles) != len(set(titles)):
            raise ValueError("pipeline AE titles must be unique and differ from [dicom] ae_title")
        known = {d.name for d in self.destinations}
        for pipeline in self.pipelines:
            unknown = set(pipeline.destinations or ()) - known
            if unknown:
                raise ValueError(f"pipeline {pipeline.ae_title} names unknown destinations: {sorted(unknown)}")
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

    def redacted(self) -> dict[str, Any]:
        """The effective settings as JSON-able data with every secret masked (``radassist config check``).

        ``SecretStr`` fields show as ``**********``; URLs (database, broker, model server,
        destinations) keep their shape but lose passwords, in the user-info part and in query
        parameters such as ``?password=`` (which libpq accepts).
        """
        data = self.model_dump(mode="json")
        data["database"]["url"] = mask_url(self.database_url)
        data["queue"]["broker_url"] = mask_url(self.broker_url)
        data["model"]["url"] = mask_url(self.model.url)
        for dest in data["destinations"]:
            if dest.get("url"):
                dest["url"] = mask_url(dest["url"])
        return data


MASK = "***"
_SECRET_QUERY_KEYS = frozenset(
    {"password", "passwd", "pwd", "pass", "secret", "token", "access_token", "api_key", "apikey", "sslpassword"}
)


def mask_url(url: str) -> str:
    """``url`` with its password hidden (``scheme://user:***@host/...?password=***``); other parts kept."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # not a URL we can take apart: show nothing rather than a secret
    masked = url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        masked = masked.replace(f"//{parts.netloc}", f"//{userinfo.split(':', 1)[0]}:{MASK}@{hostport}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(key.lower() in _SECRET_QUERY_KEYS for key, _ in pairs):
            query = urlencode([(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*/")
            masked = masked.replace(f"?{parts.query}", f"?{query}", 1)
    return masked


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


def _destination_model(item: Mapping[str, Any]) -> type[BaseModel]:
    """The model of one ``[[destinations]]`` entry, by its ``kind``, as the ``Destination`` union decides."""
    models: tuple[type[BaseModel], ...] = get_args(get_args(Destination)[0])
    kinds = {get_args(model.model_fields["kind"].annotation)[0]: model for model in models}
    return kinds.get(str(item.get("kind", "dicom")), DicomDestination)


def _read_value_files(values: Mapping[str, Any], model: type[BaseModel], where: str) -> dict[str, Any]:
    """Replace each ``<key>_file`` that is not itself a setting of ``model`` by ``<key>`` = the file's text.

    ``tls_cert_file`` and the like are settings of their own and stay untouched.  Errors name the
    setting and the file, never the file's content.
    """
    fields = model.model_fields
    resolved = dict(values)
    for key, value in values.items():
        if not key.endswith(FILE_SUFFIX) or key in fields:
            continue
        target = key[: -len(FILE_SUFFIX)]
        if target not in fields:
            continue  # an unknown key: validation names it
        if target in values:
            raise ConfigError(f"invalid configuration: {where}{target}: set either {target} or {key}, not both")
        try:
            text = Path(str(value)).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(f"invalid configuration: {where}{key}: cannot read {value}: {reason}") from None
        del resolved[key]
        resolved[target] = text.removesuffix("\n").removesuffix("\r")
    return resolved


def _read_secret_files(data: Mapping[str, Any]) -> dict[str, Any]:
    """Apply :func:`_read_value_files` to each section and each ``[[destinations]]`` entry."""
    resolved = dict(data)
    for section, value in data.items():
        field = Settings.model_fields.get(section)
        if field is None:
            continue
        if section == "destinations" and isinstance(value, (list, tuple)):
            resolved[section] = [
                _read_value_files(item, _destination_model(item), f"destinations.{n}.")
                if isinstance(item, Mapping) else item
                for n, item in enumerate(value)
            ]
        elif isinstance(value, Mapping) and isinstance(field.annotation, type) and issubclass(
            field.annotation, BaseModel
        ):
            resolved[section] = _read_value_files(value, field.annotation, f"{section}.")
    return resolved


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
    # Each layer's ``*_file`` keys are read before merging, so the environment's
    # RADASSIST_DATABASE_URL_FILE overrides the file's ``url`` like RADASSIST_DATABASE_URL would.
    data = _merge(_read_secret_files(data), _read_secret_files(env))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
