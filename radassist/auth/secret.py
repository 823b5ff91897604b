"""The web app's secret key: from ``[web] secret_key``, or generated once into the data folder (0600)."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from radassist.config import Settings
from radassist.errors import ConfigError
from radassist.store.private import create_once

logger = logging.getLogger(__name__)

SECRET_FILE = "web-secret.key"
MIN_LENGTH = 32
PLACEHOLDERS = frozenset(
    {"change-me", "changeme", "changethis", "secret", "secret-key", "secret_key", "please-change", "xxx", "todo"}
)


def _refuse_placeholder(value: str) -> None:
    lowered = value.strip().lower()
    if lowered in PLACEHOLDERS or "change" in lowered and "me" in lowered or len(value) < MIN_LENGTH:
        raise ConfigError(
            f"[web] secret_key is a placeholder or shorter than {MIN_LENGTH} characters; set a random one "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))') or leave it empty to generate one",
            code="config.secret_placeholder",
        )


def secret_key(settings: Settings) -> bytes:
    """The configured key, refusing placeholders; else the data folder's key, created on first use (0600)."""
    configured = settings.web.secret_key.get_secret_value()
    if configured:
        _refuse_placeholder(configured)
        return configured.encode("utf-8")
    path: Path = settings.storage.path / SECRET_FILE
    existed = path.exists()
    # Written whole and linked into place (0600): a process starting at the same time reads the
    # winner's key, never a half-written file.
    value = create_once(path, secrets.token_urlsafe(48).encode("ascii")).decode("ascii").strip()
    if not existed:
        logger.info("generated a web secret key in the data folder")
    if len(value) < MIN_LENGTH:
        raise ConfigError("the data folder's web-secret.key is too short; delete it to regenerate",
                          code="config.secret_placeholder")
    return value.encode("utf-8")
