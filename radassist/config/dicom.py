"""``[dicom]`` and ``[[pipelines]]``: the DICOM listener, who may send, and when a study is complete."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from radassist.config.common import AETitle, Section, validate_ae_title


class AllowedCaller(Section):
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


class RequiredSeries(Section):
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


class PipelineSettings(Section):
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
    stat: bool = False
    """Every study of this pipeline is STAT (e.g. an emergency department's AE title): its jobs go
    before routine ones in every queue, as a RIS order's STAT priority does."""

    _check_ae = field_validator("ae_title")(validate_ae_title)


class DicomSettings(Section):
    """The DICOM listener (C-STORE and C-ECHO SCP)."""

    ae_title: AETitle = "RADASSIST"
    """Our AE title; the PACS routes studies to it. Associations calling another title are refused."""
    host: str = "0.0.0.0"
    """Address the listener binds to."""
    port: int = Field(11112, ge=1, le=65535)
    """TCP port of the listener."""
    study_quiet_seconds: float = Field(10.0, gt=0)
    """A study is complete when no instance of it has arrived for this many seconds."""
    completion_timer: bool = True
    """The listener completes a study when its quiet time ends (a timer re-armed by each instance), so
    drafting starts without waiting for the scheduler's sweep. Off: only the sweep completes studies
    (it stays the backstop either way: a listener restart, required series, force-complete)."""
    max_associations: int = Field(16, ge=1)
    """Most simultaneous associations per listener process; more are refused (A-ASSOCIATE-RJ,
    transient, local limit exceeded). Connections still negotiating do not count."""
    network_timeout_seconds: float = Field(60.0, gt=0)
    """An association idle for this long is aborted; a PDU that began to arrive must be whole within
    it, and the peer must take each PDU we send within it."""
    artim_timeout_seconds: float = Field(30.0, gt=0, le=300)
    """A connection on which no association is accepted within this time is closed (the ARTIM
    timer of PS3.8 9.1.5; on the TLS port the handshake counts too)."""
    max_pending_connections: int = Field(64, ge=1)
    """Most connections per listener process still negotiating an association; they never take one
    of ``max_associations``. One more closes the oldest still negotiating."""
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
    pynetdicom_fast_path: bool = True
    """Run the listener with its changes to pynetdicom's internals (``dicom_node.fastpath``: less work
    per instance), checked at start against the installed pynetdicom. false: stock pynetdicom through
    its public API only."""
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


