"""All sections together (:class:`Settings`), and the effective URLs and masked view derived from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import field_validator, model_validator

from radassist.config.common import Section
from radassist.config.conversation import ConversationSettings
from radassist.config.destinations import Destination
from radassist.config.dicom import DicomSettings, PipelineSettings
from radassist.config.hl7 import Hl7Settings
from radassist.config.model import ModelSettings
from radassist.config.priors import PriorSources, PriorsSettings
from radassist.config.quality import QualitySettings
from radassist.config.safety import SafetySettings
from radassist.config.service import DeliverySettings, LoggingSettings, WebSettings
from radassist.config.storage import (
    DatabaseSettings,
    PreparedSettings,
    QueueSettings,
    RetentionSettings,
    StorageSettings,
)


class Settings(Section):
    """All of RadAssist's settings; one instance per process, built by :func:`load_settings`."""

    dicom: DicomSettings = DicomSettings()
    storage: StorageSettings = StorageSettings()
    prepared: PreparedSettings = PreparedSettings()
    retention: RetentionSettings = RetentionSettings()
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
    quality: QualitySettings = QualitySettings()
    prior_sources: PriorSources = ()
    """Where a patient's earlier studies are searched, in order (``[[prior_sources]]``); none: no priors."""
    priors: PriorsSettings = PriorsSettings()
    conversation: ConversationSettings = ConversationSettings()
    safety: SafetySettings = SafetySettings()

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
        for dest in (*data["destinations"], *data["prior_sources"]):
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


