"""``[delivery]``, ``[web]`` and ``[logging]``: retries, the worklist app, log output."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from radassist.config.common import Section


class DeliverySettings(Section):
    """How failed deliveries (SR to a PACS, ORU to the RIS) are retried."""

    retry_initial_seconds: float = Field(5.0, gt=0)
    """Wait before the first retry; it doubles after each failure."""
    retry_max_seconds: float = Field(600.0, gt=0)
    """The wait between retries never exceeds this."""
    max_age_seconds: float = Field(86400.0, gt=0)
    """A delivery still failing this long after its first attempt is failed for good."""


class WebSettings(Section):
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


class LoggingSettings(Section):
    """Log output. Patient names, IDs and birth dates never appear, whatever the level."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The level of RadAssist's own loggers."""


